"""A stand-in for the az CLI, put first on PATH by tests/test_infra_deploy.py.

It answers the ARM and storage data-plane commands infra/deploy.sh uses with the JSON shapes the
real CLI prints (``--query`` / ``-o tsv`` applied the way az applies them, for the dotted paths
and ``{a:b}`` multi-selects deploy.sh writes), records every call as one JSON line in
``$AZ_LOG``, and refuses what an OIDC service principal scoped to one resource group may not do:

* ``az ad ...`` (Microsoft Graph): "Insufficient privileges", exit 1, always;
* ``az feature ...`` (subscription-level read) unless ``AZ_FEATURE_STATE`` gives a state.

State between calls (deployments made, code published) lives in ``$AZ_STATE`` (a JSON file).
A command it does not know fails (exit 2), so a new az call in deploy.sh shows up in the test.

For infra/smoke.sh it also plays the deployed pipeline: a blob uploaded to the raw container gets
its ledger row (written with the app's own ``Ledger`` key and column scheme: PartitionKey the
field, the original name in ``blob``) a few ``az storage entity query`` polls later, moving
``received`` -> ``decimated`` -> the outcome ``$AZ_SMOKE_OUTCOME`` names (``converted``,
default; ``failed``, with a reason; ``stuck``, never leaving ``received``), and the MiniSEED the
row lists appears on the share one ``az storage file exists`` later.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

OUTPUTS = {
    "functionAppName": "func-ccspassive-abc",
    "functionAppHostName": "func-ccspassive-abc.azurewebsites.net",
    "pipelineStorageAccountName": "ccspassivepabc",
    "bindingsContainerName": "seiscomp",
    "bindingsBlobName": "bindings.tar.gz",
    "shareMountPath": "/mounts/ccs",
    "rawContainerName": "raw",
    "ledgerTableName": "ledger",
    "shareStorageAccountName": "ccspassivesabc",
    "shareName": "ccs",
    "seiscompVmName": "vm-ccspassive-seiscomp",
    "seedlinkAddress": "10.99.0.1:18000",
    "wireguardEndpoint": "203.0.113.7:51820",
}


def _jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def _select(value: Any, path: str) -> Any:
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _query(value: Any, query: str | None) -> Any:
    if not query:
        return value
    query = query.strip()
    if query.startswith("[]."):  # JMESPath's list projection
        return [_select(item, query[3:]) for item in value]
    if query.startswith("{") and query.endswith("}"):
        pairs = (item.split(":", 1) for item in query[1:-1].split(","))
        return {name.strip(): _select(value, path.strip()) for name, path in pairs}
    return _select(value, query)


def _tsv(value: Any) -> str:
    if isinstance(value, list):  # az prints a list's items one per line
        return "\n".join(_tsv(item) for item in value)
    if isinstance(value, dict):
        return "\t".join("" if v is None else str(v) for v in value.values())
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def _option(args: list[str], *names: str) -> str | None:
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            return args[i + 1]
    return None


def _fail(message: str, code: int = 1) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return code


#: Entity queries that see no row, then one per state, before the outcome shows.
POLLS_WITHOUT_ROW = 2
#: ``az storage entity query --filter`` as infra/smoke.sh writes it (OData literals, '' quoted).
_LEDGER_FILTER = re.compile(r"^PartitionKey eq '((?:[^']|'')*)' and blob eq '((?:[^']|'')*)'$")
FAILED_REASON = "FormatError: SEG-Y binary header: sample format code 0 is not defined"


def _ledger_row(upload: dict[str, Any], polls: int) -> dict[str, Any] | None:
    """The ledger row the app would hold for an upload after ``polls`` queries."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scripts.smoke_helper import SMOKE_START_NS
    from shared_code.ledger import row_key
    from shared_code.share_layout import blob_paths, parse_blob_name

    steps = ["received", "decimated", upload["outcome"]]
    if polls <= POLLS_WITHOUT_ROW:
        return None
    state = steps[min(polls - POLLS_WITHOUT_ROW, len(steps)) - 1]
    if state == "stuck":
        state = "received"
    name = upload["name"]
    row = {
        "PartitionKey": parse_blob_name(name).field,
        "RowKey": row_key(name, upload["etag"]),
        "blob": name,
        "etag": upload["etag"],
        "state": state,
        "stage": "decimate" if state == "received" else "convert",
        "reason": "",
        "mseed_paths": "[]",
        "failure_path": "",
    }
    if state == "converted":
        row["mseed_paths"] = json.dumps([blob_paths(name).mseed(SMOKE_START_NS)])
    elif state == "failed":
        row.update(stage="decimate", reason=f"{name}: {FAILED_REASON}",
                   failure_path=f"failed/2026-11-29/decimate-{row['RowKey']}.json")  # fmt: skip
    return row


def main(args: list[str]) -> int:
    state_path = Path(os.environ["AZ_STATE"])
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    with open(os.environ["AZ_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(args) + "\n")
    words = list(itertools.takewhile(lambda a: not a.startswith("-"), args))
    command = " ".join(words[:3])
    result: Any = None

    if args[:1] == ["ad"]:
        # What Graph answers a principal without directory read rights.
        return _fail("Insufficient privileges to complete the operation.")
    if args[:1] == ["feature"]:
        feature_state = os.environ.get("AZ_FEATURE_STATE", "")
        if not feature_state:
            return _fail(
                "(AuthorizationFailed) The client does not have authorization to perform action "
                "'Microsoft.Features/providers/features/read' over scope '/subscriptions/…'."
            )
        result = {
            "name": "Microsoft.Compute/EncryptionAtHost",
            "properties": {"state": feature_state},
        }
    elif command == "account show":
        result = {
            "id": "00000000-0000-0000-0000-00000000000a",
            "name": "ccs-subscription",
            "tenantId": "00000000-0000-0000-0000-00000000000b",
            "user": {"name": os.environ["AZ_USER_NAME"], "type": os.environ["AZ_USER_TYPE"]},
        }
    elif command == "account get-access-token":
        claims = {"aud": "https://management.core.windows.net/", "oid": os.environ["AZ_OID"]}
        result = {"accessToken": _jwt(claims), "tokenType": "Bearer"}
    elif command == "account list-locations":
        result = [{"name": name} for name in ("swedencentral", "norwayeast", "westeurope")]
    elif command == "group show":
        if os.environ.get("AZ_NO_RIGHTS"):
            name = _option(args, "-n")
            return _fail(
                "(AuthorizationFailed) The client does not have authorization to perform action "
                f"'Microsoft.Resources/subscriptions/resourcegroups/read' over scope "
                f"'/subscriptions/…/resourcegroups/{name}'."
            )
        if not state.get("group"):
            name = _option(args, "-n")
            return _fail(f"(ResourceGroupNotFound) Resource group '{name}' could not be found.", 3)
        result = {"name": _option(args, "-n"), "properties": {"provisioningState": "Succeeded"}}
    elif command == "group create":
        state["group"] = {"name": _option(args, "-n"), "location": _option(args, "-l")}
        result = state["group"]
    elif command == "deployment group create":
        state.setdefault("deployments", []).append(args)
        result = {"properties": {"provisioningState": "Succeeded", "outputs": {}}}
    elif command == "deployment group what-if":
        print("Resource and property changes are indicated with these symbols: + Create")
        return 0
    elif command == "deployment group show":
        if not state.get("deployments"):
            return _fail("(DeploymentNotFound) Deployment could not be found.", 3)
        outputs = {k: {"type": "String", "value": v} for k, v in OUTPUTS.items()}
        result = {"properties": {"outputs": outputs}}
    elif command == "storage blob upload":
        if _option(args, "--auth-mode") != "login":
            return _fail("the pipeline account allows no shared key: use --auth-mode login")
        if not Path(_option(args, "--file", "-f") or "").is_file():
            return _fail("no such file")
        name = _option(args, "--name", "-n")
        state.setdefault("blobs", []).append(name)
        if _option(args, "--container-name", "-c") == OUTPUTS["rawContainerName"]:
            etag = f"0x8DD{len(state['blobs']):013X}"
            state.setdefault("uploads", []).append({
                "name": name, "etag": etag, "polls": 0,
                "outcome": os.environ.get("AZ_SMOKE_OUTCOME", "converted"),
            })  # fmt: skip
            result = {"etag": f'"{etag}"', "lastModified": "2026-11-29T16:00:00+00:00"}
    elif command == "storage entity query":
        if _option(args, "--auth-mode") != "login":
            return _fail("the pipeline account allows no shared key: use --auth-mode login")
        if _option(args, "--table-name", "-t") != OUTPUTS["ledgerTableName"]:
            return _fail("(TableNotFound) The table specified does not exist.", 3)
        match = _LEDGER_FILTER.match(_option(args, "--filter") or "")
        if not match:
            return _fail(
                f"the stand-in az does not know the filter {_option(args, '--filter')!r}", 2
            )
        field, blob = (g.replace("''", "'") for g in match.groups())
        items = []
        for upload in state.get("uploads", []):
            if upload["name"] == blob:
                upload["polls"] += 1
                row = _ledger_row(upload, upload["polls"])
                if row and row["PartitionKey"] == field:
                    items.append(row)
                    if row["state"] == "converted":
                        state.setdefault("share", {}).update(
                            dict.fromkeys(json.loads(row["mseed_paths"]), 0)
                        )
        select = args[args.index("--select") + 1 :] if "--select" in args else []
        select = list(itertools.takewhile(lambda a: not a.startswith("-"), select))
        if select:
            items = [{k: v for k, v in item.items() if k in select} for item in items]
        result = {"items": items, "nextMarker": {}}
    elif command == "storage file exists":
        if (_option(args, "--account-name") != OUTPUTS["shareStorageAccountName"]
                or _option(args, "--share-name", "-s") != OUTPUTS["shareName"]):  # fmt: skip
            return _fail("(ShareNotFound) The specified share does not exist.", 3)
        if (
            _option(args, "--auth-mode") == "login"
            and "--enable-file-backup-request-intent" not in args
        ):
            return _fail("--enable-file-backup-request-intent is required for file share OAuth")
        if _option(args, "--auth-mode") != "login" and os.environ.get("AZ_NO_LIST_KEYS"):
            # No credentials given: az reads the account key through ARM first.
            return _fail(
                "(AuthorizationFailed) The client does not have authorization to perform action "
                "'Microsoft.Storage/storageAccounts/listKeys/action' over scope '/subscriptions/…'."
            )
        share = state.setdefault("share", {})
        path = _option(args, "--path", "-p") or ""
        # The file shows one check after the row says converted (the SMB write is visible
        # to the REST API once closed).
        exists = path in share and share[path] >= 1
        if path in share:
            share[path] += 1
        result = {"exists": exists}
    elif command == "functionapp deployment source":
        if not Path(_option(args, "--src") or "").is_file():
            return _fail("no such file")
        state["published"] = True
    elif command == "functionapp function show":
        if not state.get("published"):
            return _fail("(NotFound) Function not found.", 3)
        result = {"name": f"{_option(args, '-n')}/{_option(args, '--function-name')}"}
    elif command == "vm boot-diagnostics get-boot-log":
        print("[  OK  ] CCS WireGuard public key: c3RhbmQtaW4=")
        return 0
    else:
        return _fail(f"the stand-in az does not know: az {' '.join(args)}", 2)

    state_path.write_text(json.dumps(state))
    output = _option(args, "-o", "--output") or "json"
    value = _query(result, _option(args, "--query"))
    if output == "tsv":
        print(_tsv(value))
    elif output != "none" and value is not None:
        print(json.dumps(value, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
