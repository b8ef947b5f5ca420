#!/usr/bin/env bash
# Deploy CCS-passive into one resource group with the az CLI (idempotent; safe to re-run).
#
# Only ARM and storage data-plane calls, never Microsoft Graph (`az ad`): it runs under CI's OIDC
# service principal, which has no Graph rights (tests/test_infra_deploy.py runs it that way).
#
#   1. resource group + infra/main.bicep, deployEventSubscription=false
#   2. SeisComP station bindings (python -m shared_code.seiscomp) -> bindings blob, which the
#      VM applies within 5 minutes; beside it the StationXML inventory of the same channels
#      (python -m shared_code.cli inventory) -> inventory.xml, for SeisComP's inventory
#      (docs/deployment.md) and other FDSN consumers
#   3. the function code, zip deploy with remote build (Flex Consumption)
#   4. wait until the host has indexed the `decimate` function
#   5. infra/main.bicep again, deployEventSubscription=true: the Event Grid subscription to
#      `decimate` can only be created once that function exists
#
# --what-if runs `az deployment group what-if` instead and changes nothing.
# See docs/deployment.md for the same steps as raw az commands.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATE="$ROOT/infra/main.bicep"
PARAMS="$ROOT/infra/main.bicepparam"
RESOURCE_GROUP=${CCS_RESOURCE_GROUP:-}
LOCATION=${CCS_LOCATION:-}
DEPLOYMENT_NAME=${CCS_DEPLOYMENT_NAME:-ccs-passive}
FIELDS="$ROOT/config/fields.toml"
# StationXML of every channel, uploaded beside the bindings archive (same container).
INVENTORY_BLOB=inventory.xml
BUILD="$ROOT/build/deploy"
WHAT_IF=false
SKIP_CODE=false
DEPLOY_VM=true
INDEX_TIMEOUT=${CCS_INDEX_TIMEOUT:-600}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

usage() {
  cat <<EOF
Usage: infra/deploy.sh -g RESOURCE_GROUP [-l LOCATION] [--params FILE] [--what-if]
                       [--skip-code] [--no-vm] [--name DEPLOYMENT_NAME]

  -g, --resource-group  target resource group (created if missing; env CCS_RESOURCE_GROUP)
  -l, --location        region for a new resource group (env CCS_LOCATION)
  --params FILE         Bicep parameters file (default infra/main.bicepparam)
  --what-if             show what the deployment would change, change nothing
  --skip-code           infrastructure only: no code publish, no Event Grid subscription
  --no-vm               do not deploy the SeisComP VM and its network
  --name NAME           deployment name (default ccs-passive)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    -g | --resource-group) RESOURCE_GROUP=$2; shift 2 ;;
    -l | --location) LOCATION=$2; shift 2 ;;
    --params) PARAMS=$2; shift 2 ;;
    --what-if) WHAT_IF=true; shift ;;
    --skip-code) SKIP_CODE=true; shift ;;
    --no-vm) DEPLOY_VM=false; shift ;;
    --name) DEPLOYMENT_NAME=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { printf '[deploy %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '[deploy] error: %s\n' "$*" >&2; exit 1; }

[ -n "$RESOURCE_GROUP" ] || { usage >&2; die "a resource group is required (-g)"; }
[ -f "$PARAMS" ] || die "parameters file not found: $PARAMS"
for tool in az zip tar; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
  || die "Python >= 3.11 is required (set PYTHON=...)"

log "checking the Azure CLI login"
az account show --query '{subscription:name, id:id, user:user.name}' -o tsv >/dev/null \
  || die "not logged in: run az login (or azure/login in CI)"

# Field names for the per-field alerts come from the field configuration itself.
FIELD_NAMES=$("$PYTHON" -c '
import json, sys, tomllib
with open(sys.argv[1], "rb") as fh:
    print(json.dumps(sorted(tomllib.load(fh)["fields"])))
' "$FIELDS")
log "fields: $FIELD_NAMES"

# The principal running this script gets write access to the bindings container only. Its object
# id comes from ARM, never from Microsoft Graph (`az ad ...`): a CI service principal logged in
# with OIDC normally has no Graph rights. In order: CCS_DEPLOYER_OBJECT_ID (a workflow input or
# variable), else the `oid` claim of the ARM access token that `az account get-access-token`
# returns (Microsoft identity platform access token claims: `oid` is the object id of the
# principal, for users and for service principals alike).
# https://learn.microsoft.com/cli/azure/account#az-account-get-access-token
# https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference
case "$(az account show --query user.type -o tsv)" in
  servicePrincipal) DEPLOYER_TYPE=ServicePrincipal ;;
  *) DEPLOYER_TYPE=User ;;
esac
# The token is printed as is by today's az; the CLI's preview documents redacting it unless
# --plaintext is given (which older versions reject as an unknown argument): try both.
token_oid() {
  "$PYTHON" -c '
import base64, json, sys
parts = sys.stdin.read().strip().split(".")
if len(parts) == 3:
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    print(json.loads(base64.urlsafe_b64decode(payload)).get("oid", ""))
'
}
DEPLOYER_ID=${CCS_DEPLOYER_OBJECT_ID:-}
if [ -z "$DEPLOYER_ID" ]; then
  DEPLOYER_ID=$(az account get-access-token --query accessToken -o tsv 2>/dev/null | token_oid) || true
fi
if [ -z "$DEPLOYER_ID" ]; then
  DEPLOYER_ID=$(az account get-access-token --plaintext --query accessToken -o tsv 2>/dev/null \
    | token_oid) || true
fi
[[ "$DEPLOYER_ID" =~ ^[0-9a-fA-F-]{36}$ ]] \
  || die "no object id for the deploying principal: set CCS_DEPLOYER_OBJECT_ID (az account get-access-token gave no oid claim)"
log "deployer: $DEPLOYER_TYPE $DEPLOYER_ID"

if [ "$DEPLOY_VM" = true ] && grep -q "CCS_SSH_PUBLIC_KEY" "$PARAMS" && [ -z "${CCS_SSH_PUBLIC_KEY:-}" ]; then
  die "$PARAMS reads the VM's SSH public key from CCS_SSH_PUBLIC_KEY, which is empty"
fi
# Encryption at host is a subscription feature. Reading its state needs
# Microsoft.Features/.../read at subscription scope, which a principal scoped to the resource group
# lacks: then the check is skipped with a warning (the VM's deployment fails later if the feature
# is missing). A readable state other than Registered stops here, before anything is changed.
# https://learn.microsoft.com/cli/azure/feature#az-feature-show
if [ "$DEPLOY_VM" = true ]; then
  if state=$(az feature show --namespace Microsoft.Compute --name EncryptionAtHost \
    --query properties.state -o tsv 2>/dev/null); then
    [ "$state" = "Registered" ] \
      || die "the VM uses encryption at host (state: ${state:-unknown}): run 'az feature register --namespace Microsoft.Compute --name EncryptionAtHost' and 'az provider register -n Microsoft.Compute' once per subscription"
  else
    log "warning: cannot read the EncryptionAtHost feature state (no subscription-level read); assuming it is registered"
  fi
fi

# ARM answers a group the principal may not read with AuthorizationFailed and a missing one with
# ResourceGroupNotFound: only the second is created. A location is checked against the
# subscription's regions first (az account list-locations; skipped where even that is not
# readable), so a typo stops here rather than half-way through.
# https://learn.microsoft.com/cli/azure/account#az-account-list-locations
if ! group_error=$(az group show -n "$RESOURCE_GROUP" -o none 2>&1); then
  case "$group_error" in
    *AuthorizationFailed*)
      die "no rights on resource group $RESOURCE_GROUP: the deploying principal needs Owner (or Contributor and Role Based Access Control Administrator) on it: az role assignment create --assignee-object-id $DEPLOYER_ID --assignee-principal-type $DEPLOYER_TYPE --role Owner --scope /subscriptions/<subscription id>/resourceGroups/$RESOURCE_GROUP" ;;
    *ResourceGroupNotFound*) ;;
    *) die "cannot read resource group $RESOURCE_GROUP: $(printf '%s' "$group_error" | head -n 1)" ;;
  esac
  [ -n "$LOCATION" ] || die "resource group $RESOURCE_GROUP does not exist: give -l LOCATION"
  if regions=$(az account list-locations --query "[].name" -o tsv 2>/dev/null); then
    printf '%s\n' "$regions" | grep -qx "$LOCATION" \
      || die "location $LOCATION is not a region of this subscription: az account list-locations --query '[].name' -o tsv lists them"
  fi
  log "creating resource group $RESOURCE_GROUP in $LOCATION"
  az group create -n "$RESOURCE_GROUP" -l "$LOCATION" -o none
fi

common_params=(
  --resource-group "$RESOURCE_GROUP"
  --template-file "$TEMPLATE"
  --parameters "$PARAMS"
  --parameters "fieldNames=$FIELD_NAMES"
  --parameters "deploySeiscompVm=$DEPLOY_VM"
  --parameters "deployerPrincipalId=$DEPLOYER_ID" "deployerPrincipalType=$DEPLOYER_TYPE"
)

output() {
  az deployment group show -g "$RESOURCE_GROUP" -n "$DEPLOYMENT_NAME" \
    --query "properties.outputs.$1.value" -o tsv
}

function_indexed() {
  az functionapp function show -g "$RESOURCE_GROUP" -n "$1" --function-name decimate \
    --query name -o tsv >/dev/null 2>&1
}

if [ "$WHAT_IF" = true ]; then
  subscription=false
  app=$(output functionAppName 2>/dev/null || true)
  if [ -n "$app" ] && function_indexed "$app"; then subscription=true; fi
  log "what-if (deployEventSubscription=$subscription); nothing is changed"
  az deployment group what-if "${common_params[@]}" --name "$DEPLOYMENT_NAME" \
    --parameters "deployEventSubscription=$subscription"
  exit 0
fi

# --- 1. infrastructure, without the Event Grid subscription -----------------------------------

log "1/5 deploying infrastructure (deployEventSubscription=false)"
az deployment group create "${common_params[@]}" --name "$DEPLOYMENT_NAME" \
  --parameters deployEventSubscription=false -o none
APP=$(output functionAppName)
PIPELINE_ACCOUNT=$(output pipelineStorageAccountName)
BINDINGS_CONTAINER=$(output bindingsContainerName)
BINDINGS_BLOB=$(output bindingsBlobName)
log "function app: $APP; pipeline storage: $PIPELINE_ACCOUNT"

# --- 2. SeisComP station bindings --------------------------------------------------------------

log "2/5 rendering SeisComP station bindings from $FIELDS"
rm -rf "$BUILD" && mkdir -p "$BUILD/seiscomp"
(cd "$ROOT" && "$PYTHON" -m shared_code.seiscomp --fields "$FIELDS" --out "$BUILD/seiscomp" \
  --share-mount "$(output shareMountPath)")
# Deterministic archive: same configuration, same bytes, no reload on the VM.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$BUILD/seiscomp" \
  -cf - etc streams.txt | gzip -n >"$BUILD/bindings.tar.gz"
# The same field configuration as the bindings, so the same NET.STA.LOC.CHA set.
(cd "$ROOT" && "$PYTHON" -m shared_code.cli inventory --fields "$FIELDS" \
  --output "$BUILD/$INVENTORY_BLOB")
publish() { # file, blob name, what
  for attempt in 1 2 3 4 5 6; do
    if az storage blob upload --auth-mode login --account-name "$PIPELINE_ACCOUNT" \
      --container-name "$BINDINGS_CONTAINER" --name "$2" \
      --file "$1" --overwrite -o none --only-show-errors; then
      log "$3 published: $PIPELINE_ACCOUNT/$BINDINGS_CONTAINER/$2"
      return 0
    fi
    [ "$attempt" -lt 6 ] || die "could not upload the $3"
    log "upload refused (role assignments take a few minutes to apply); retrying in 30 s"
    sleep 30
  done
}
publish "$BUILD/bindings.tar.gz" "$BINDINGS_BLOB" "bindings archive"
publish "$BUILD/$INVENTORY_BLOB" "$INVENTORY_BLOB" "StationXML inventory"

if [ "$SKIP_CODE" = true ]; then
  log "--skip-code: not publishing code; the Event Grid subscription is not created"
  exit 0
fi

# --- 3. function code --------------------------------------------------------------------------

log "3/5 packaging the function app"
(
  cd "$ROOT"
  zip -q -r "$BUILD/app.zip" function_app.py host.json requirements.txt functions shared_code config \
    -x '*/__pycache__/*' '*.pyc'
)
log "publishing $BUILD/app.zip to $APP (remote build)"
az functionapp deployment source config-zip -g "$RESOURCE_GROUP" -n "$APP" \
  --src "$BUILD/app.zip" --build-remote true -o none

# --- 4. wait for the host to index `decimate` --------------------------------------------------

log "4/5 waiting for the host to index the decimate function (up to ${INDEX_TIMEOUT}s)"
deadline=$((SECONDS + INDEX_TIMEOUT))
until function_indexed "$APP"; do
  [ "$SECONDS" -lt "$deadline" ] || die "decimate not indexed after ${INDEX_TIMEOUT}s: check the app's logs (an import error shows as an app with zero functions)"
  sleep 15
done
log "decimate is indexed"

# --- 5. the Event Grid subscription ------------------------------------------------------------

log "5/5 deploying again with deployEventSubscription=true"
az deployment group create "${common_params[@]}" --name "$DEPLOYMENT_NAME" \
  --parameters deployEventSubscription=true -o none

log "done"
echo "  function app      : $APP ($(output functionAppHostName))"
echo "  raw uploads       : $PIPELINE_ACCOUNT/$(output rawContainerName)/<field>/..."
echo "  share             : $(output shareStorageAccountName)/$(output shareName) on $(output shareMountPath)"
if [ "$DEPLOY_VM" = true ]; then
  vm=$(output seiscompVmName)
  echo "  SeedLink          : $(output seedlinkAddress) (through WireGuard only)"
  echo "  WireGuard endpoint: $(output wireguardEndpoint)"
  key=$(az vm boot-diagnostics get-boot-log -g "$RESOURCE_GROUP" -n "$vm" 2>/dev/null \
    | grep -o 'CCS WireGuard public key: [A-Za-z0-9+/=]*' | tail -n1 || true)
  echo "  ${key:-WireGuard public key: not in the boot log yet (re-run, or see docs/deployment.md)}"
fi
