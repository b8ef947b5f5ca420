#!/usr/bin/env bash
# Post-deploy smoke test of CCS-passive: one small file from upload to SeedLink.
#
#   1. writes a small raw file the field's configuration accepts (python -m scripts.smoke_helper
#      sample: 10 s at 1000 Hz, the field's first station, data dated 2000-01-01 so it can never
#      overlap a field's real data) and uploads it to raw/<field>/smoke/<UTC time>-<id>.<ext>
#   2. waits (bounded, with progress) for its ledger row to reach `converted`; a `failed` row
#      stops with the row's stage and reason
#   3. checks that the row's MiniSEED is where the app's share layout puts it and that it exists
#      on the Azure Files share
#   4. if SeedLink answers (the operator's WireGuard peer is up), waits for the station's stream
#      there (`slinktool -Q`, or ObsPy's SeedLink client); otherwise says why it is skipped
#
# Resource names come from the deployment's outputs, as in infra/deploy.sh. The row is found by
# the ledger's partition (the field) and its `blob` column, the MiniSEED path from
# shared_code.share_layout (both through scripts/smoke_helper.py), never re-implemented here.
# Every failure is one line: what failed and the command that shows more. Exit 0 on success.
# Roles it needs and what success looks like: docs/deployment.md, "Smoke test".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESOURCE_GROUP=${CCS_RESOURCE_GROUP:-}
DEPLOYMENT_NAME=${CCS_DEPLOYMENT_NAME:-ccs-passive}
FIELDS="$ROOT/config/fields.toml"
FIELD=""
TIMEOUT=${CCS_SMOKE_TIMEOUT:-900}
INTERVAL=${CCS_SMOKE_INTERVAL:-15}
SEEDLINK_TIMEOUT=${CCS_SMOKE_SEEDLINK_TIMEOUT:-300}
SEEDLINK=""
CHECK_SEEDLINK=true
SHARE_AUTH=key
TABLE=""
# slinktool (SeisComP's SeedLink client) if installed; empty: ObsPy's client instead.
SLINKTOOL=${SLINKTOOL-slinktool}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

usage() {
  cat <<EOF
Usage: infra/smoke.sh -g RESOURCE_GROUP [--field NAME] [--timeout SECONDS] [--interval SECONDS]
                      [--seedlink HOST:PORT | --no-seedlink] [--seedlink-timeout SECONDS]
                      [--share-auth key|login] [--table NAME] [--name DEPLOYMENT_NAME]

  -g, --resource-group  the deployment's resource group (env CCS_RESOURCE_GROUP)
  --field NAME          field to upload to (default: the first in config/fields.toml)
  --timeout SECONDS     how long to wait, from the upload, for the row to reach converted
                        and its MiniSEED to be on the share (default 900; env CCS_SMOKE_TIMEOUT)
  --interval SECONDS    between polls (default 15; env CCS_SMOKE_INTERVAL)
  --seedlink HOST:PORT  SeedLink to ask (default: the deployment's seedlinkAddress output)
  --no-seedlink         skip the SeedLink check
  --seedlink-timeout S  how long to wait for the stream once SeedLink answers (default 300;
                        env CCS_SMOKE_SEEDLINK_TIMEOUT)
  --share-auth MODE     key: az reads the share account's key through ARM (Contributor);
                        login: Entra ID (Storage File Data Privileged Reader). Default key
  --table NAME          ledger table (default: the deployment's ledgerTableName output)
  --name NAME           deployment name (default ccs-passive)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    -g | --resource-group) RESOURCE_GROUP=$2; shift 2 ;;
    --field) FIELD=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --seedlink) SEEDLINK=$2; shift 2 ;;
    --no-seedlink) CHECK_SEEDLINK=false; shift ;;
    --seedlink-timeout) SEEDLINK_TIMEOUT=$2; shift 2 ;;
    --share-auth) SHARE_AUTH=$2; shift 2 ;;
    --table) TABLE=$2; shift 2 ;;
    --name) DEPLOYMENT_NAME=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

log() { printf '[smoke %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
# One line: what failed, and the command that shows more.
fail() { printf '[smoke] FAILED: %s; more: %s\n' "$1" "$2" >&2; exit 1; }
helper() { (cd "$ROOT" && "$PYTHON" -m scripts.smoke_helper "$@"); }

[ -n "$RESOURCE_GROUP" ] || { usage >&2; fail "a resource group is required (-g)" "infra/smoke.sh --help"; }
[[ "$TIMEOUT" =~ ^[0-9]+$ && "$INTERVAL" =~ ^[0-9]+$ && "$SEEDLINK_TIMEOUT" =~ ^[0-9]+$ ]] \
  || fail "--timeout, --seedlink-timeout and --interval take whole seconds" "infra/smoke.sh --help"
case "$SHARE_AUTH" in
  key) share_auth=() ;;
  # Azure Files with Entra ID from the CLI needs the backup intent flag, and a role with the
  # file data "privileged" actions (az storage file --help; https://learn.microsoft.com/azure/storage/files/authorize-oauth-rest).
  login) share_auth=(--auth-mode login --enable-file-backup-request-intent) ;;
  *) fail "--share-auth $SHARE_AUTH: expected key or login" "infra/smoke.sh --help" ;;
esac
command -v az >/dev/null || fail "the az CLI is required" "https://learn.microsoft.com/cli/azure/install-azure-cli"

az account show --query id -o tsv >/dev/null 2>&1 || fail "not logged in to Azure" "az login"

output() {
  az deployment group show -g "$RESOURCE_GROUP" -n "$DEPLOYMENT_NAME" \
    --query "properties.outputs.$1.value" -o tsv
}
show_deployment="az deployment group show -g $RESOURCE_GROUP -n $DEPLOYMENT_NAME --query properties.outputs"
PIPELINE_ACCOUNT=$(output pipelineStorageAccountName 2>/dev/null) \
  || fail "no deployment $DEPLOYMENT_NAME in resource group $RESOURCE_GROUP (run infra/deploy.sh first)" "$show_deployment"
RAW_CONTAINER=$(output rawContainerName)
SHARE_ACCOUNT=$(output shareStorageAccountName)
SHARE_NAME=$(output shareName)
[ -n "$TABLE" ] || TABLE=$(output ledgerTableName)
[ -n "$TABLE" ] \
  || fail "the deployment has no ledgerTableName output (deployed by an older infra/deploy.sh): re-run it or pass --table" "$show_deployment"
if [ "$CHECK_SEEDLINK" = true ] && [ -z "$SEEDLINK" ]; then SEEDLINK=$(output seedlinkAddress); fi

if [ -z "$FIELD" ]; then
  FIELD=$("$PYTHON" -c '
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    print(next(iter(tomllib.load(fh)["fields"])))
' "$FIELDS")
fi

# --- 1. sample and upload ----------------------------------------------------------------------

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
IFS=$'\t' read -r SAMPLE NETWORK STATION < <(helper sample --fields "$FIELDS" --field "$FIELD" --out "$WORK") \
  || fail "no sample file for field $FIELD" "cd $ROOT && $PYTHON -m scripts.smoke_helper sample --fields $FIELDS --field $FIELD --out /tmp/smoke"
ext=${SAMPLE##*.}
BLOB="$FIELD/smoke/smoke-$(date -u +%Y%m%d-%H%M%S)-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n').$ext"
mapfile -t expected < <(helper expect "$BLOB")
PARTITION=${expected[0]}
EXPECTED_MSEED=${expected[1]}
FILTER=${expected[2]}
log "field $FIELD: uploading $(basename "$SAMPLE") ($(wc -c <"$SAMPLE") bytes, $NETWORK.$STATION) to $PIPELINE_ACCOUNT/$RAW_CONTAINER/$BLOB"

# https://learn.microsoft.com/cli/azure/storage/blob#az-storage-blob-upload
az storage blob upload --auth-mode login --account-name "$PIPELINE_ACCOUNT" \
  --container-name "$RAW_CONTAINER" --name "$BLOB" --file "$SAMPLE" -o none --only-show-errors \
  || fail "upload to $PIPELINE_ACCOUNT/$RAW_CONTAINER refused (your identity needs Storage Blob Data Contributor on the raw container, see docs/deployment.md)" \
    "az storage blob upload --auth-mode login --account-name $PIPELINE_ACCOUNT --container-name $RAW_CONTAINER --name $BLOB --file <file> --debug"
deadline=$((SECONDS + TIMEOUT))

# --- 2. the ledger row -------------------------------------------------------------------------

# The ledger's PartitionKey is the field, its RowKey a hash of the blob name and ETag
# (shared_code/ledger.py); the row keeps the original name in the `blob` column, so the filter
# asks the field's partition for that name.
# https://learn.microsoft.com/cli/azure/storage/entity#az-storage-entity-query
query=(az storage entity query --auth-mode login --account-name "$PIPELINE_ACCOUNT"
  --table-name "$TABLE" --filter "$FILTER" --select state stage reason mseed_paths)
show_row="az storage entity query --auth-mode login --account-name $PIPELINE_ACCOUNT --table-name $TABLE --filter \"$FILTER\""
log "waiting for the ledger row ($TABLE, partition $PARTITION) to reach converted (up to ${TIMEOUT}s)"
last="(none yet)"
while :; do
  answer=$("${query[@]}" -o json --only-show-errors) \
    || fail "ledger query refused (your identity needs Storage Table Data Reader on table $TABLE, see docs/deployment.md)" "$show_row --debug"
  mapfile -t row < <(printf '%s' "$answer" | helper row)
  state=${row[0]:-}
  case "$state" in
    converted) log "ledger: converted"; break ;;
    failed) fail "conversion of $BLOB failed at stage ${row[1]:-?}: ${row[2]:-no reason recorded}" "$show_row" ;;
    superseded) fail "ledger row of $BLOB is superseded (the blob was overwritten during the test)" "$show_row" ;;
  esac
  if [ "$state" != "$last" ]; then
    log "ledger: ${state:-no row yet} after $((TIMEOUT - deadline + SECONDS))s"
    last=$state
  else
    log "  ... still ${state:-no row}"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    hint="the pipeline is slow or stuck at stage ${row[1]:-?}"
    [ -n "$state" ] || hint="no row: is the Event Grid subscription deployed and decimate running?"
    fail "ledger row of $BLOB still '${state:-absent}' after ${TIMEOUT}s ($hint; see docs/operations.md)" "$show_row"
  fi
  sleep "$INTERVAL"
done
mseed_paths=("${row[@]:3}")

# --- 3. the MiniSEED on the share --------------------------------------------------------------

[ "${#mseed_paths[@]}" -gt 0 ] || fail "ledger row of $BLOB is converted but lists no MiniSEED" "$show_row"
found=false
for path in "${mseed_paths[@]}"; do [ "$path" = "$EXPECTED_MSEED" ] && found=true; done
[ "$found" = true ] \
  || fail "ledger lists MiniSEED ${mseed_paths[*]}, but the share layout puts $BLOB at $EXPECTED_MSEED" "$show_row"
# https://learn.microsoft.com/cli/azure/storage/file#az-storage-file-exists
for path in "${mseed_paths[@]}"; do
  exists_cmd=(az storage file exists --account-name "$SHARE_ACCOUNT" --share-name "$SHARE_NAME"
    --path "$path" "${share_auth[@]}" --query exists -o tsv --only-show-errors)
  list_cmd="az storage file list --account-name $SHARE_ACCOUNT --share-name $SHARE_NAME --path $(dirname "$path") ${share_auth[*]} -o table"
  while :; do
    exists=$("${exists_cmd[@]}") \
      || fail "cannot read share $SHARE_ACCOUNT/$SHARE_NAME with --share-auth $SHARE_AUTH (key: needs listKeys on the account, e.g. Contributor; login: Storage File Data Privileged Reader)" "${exists_cmd[*]} --debug"
    # knack (az's output layer, knack/output.py _TsvOutput) prints a bare boolean as `true`;
    # older releases printed `True`: compare without case.
    [ "$(printf '%s' "$exists" | tr '[:upper:]' '[:lower:]')" = true ] && break
    [ "$SECONDS" -lt "$deadline" ] || fail "$path not on share $SHARE_ACCOUNT/$SHARE_NAME after ${TIMEOUT}s" "$list_cmd"
    log "  ... $path not on the share yet"
    sleep "$INTERVAL"
  done
  log "share: $SHARE_NAME/$path exists"
done

# --- 4. SeedLink -------------------------------------------------------------------------------

if [ "$CHECK_SEEDLINK" = false ]; then
  log "seedlink: skipped (--no-seedlink)"
elif [ -z "$SEEDLINK" ]; then
  log "seedlink: skipped (the deployment has no SeisComP VM: no seedlinkAddress output)"
elif ! helper seedlink --probe "$SEEDLINK"; then
  log "seedlink: skipped ($SEEDLINK not reachable: bring up your WireGuard peer, see docs/deployment.md 'Connecting a SeedLink consumer')"
else
  if [ -n "$SLINKTOOL" ] && command -v "$SLINKTOOL" >/dev/null; then
    streams_cmd=("$SLINKTOOL" -Q "$SEEDLINK")
  else
    streams_cmd=(helper seedlink "$SEEDLINK")
  fi
  log "seedlink: waiting for $NETWORK.$STATION at $SEEDLINK (${streams_cmd[0]}, up to ${SEEDLINK_TIMEOUT}s)"
  deadline=$((SECONDS + SEEDLINK_TIMEOUT))
  # slinktool -Q prints one stream per line, "NET STA LOC CHA TYPE start - end"; the helper
  # prints "NET STA LOC CHA": network and station are the first two words of both.
  until "${streams_cmd[@]}" 2>/dev/null | awk -v n="$NETWORK" -v s="$STATION" '$1 == n && $2 == s { hit = 1 } END { exit !hit }'; do
    [ "$SECONDS" -lt "$deadline" ] \
      || fail "SeedLink at $SEEDLINK lists no stream of $NETWORK.$STATION after ${SEEDLINK_TIMEOUT}s (on the VM: seiscomp status seedlink; the bindings: docs/deployment.md)" "slinktool -Q $SEEDLINK"
    log "  ... $NETWORK.$STATION not in SeedLink yet"
    sleep "$INTERVAL"
  done
  log "seedlink: $NETWORK.$STATION is served at $SEEDLINK"
fi

log "passed: $BLOB -> ${mseed_paths[*]}"
