"""infra/deploy.sh runs to the end under an identity without Microsoft Graph rights.

The real script runs (bash, zip, tar, the bindings generator) on a copy of the repository, with
tests/az_stand_in.py as ``az`` first on PATH: it refuses every ``az ad`` call, as Graph does for
a GitHub OIDC service principal, and ``az feature`` unless told a state, as ARM does for a
principal scoped to one resource group; it records every other call.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from obspy import read_inventory

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = Path(__file__).with_name("az_stand_in.py")
#: What deploy.sh packs or runs: the copy holds only these (no build/ of the real worktree).
COPIED = ["infra", "config", "shared_code", "functions", "function_app.py", "host.json",
          "requirements.txt"]  # fmt: skip
SP_OID = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"
USER_OID = "9e8d7c6b-5a49-4837-a625-140f3e2d1c0b"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, copy / name, ignore=ignore)
        else:
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy / name)
    return copy


def run_deploy(
    repo: Path, *args: str, user_type: str = "servicePrincipal", oid: str = SP_OID,
    feature_state: str = "", group_exists: bool = True, location: str | None = "swedencentral",
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:  # fmt: skip
    """Run deploy.sh with the stand-in az; returns the process and the az calls it made."""
    bin_dir = repo.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STAND_IN}" "$@"\n')
    az.chmod(0o755)
    log, state = repo.parent / "az.log", repo.parent / "az-state.json"
    log.unlink(missing_ok=True)
    state.write_text(json.dumps({"group": {"name": "rg"}} if group_exists else {}))
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(repo.parent),
        "PYTHON": sys.executable,
        "AZ_LOG": str(log),
        "AZ_STATE": str(state),
        "AZ_USER_TYPE": user_type,
        "AZ_USER_NAME": "0a1b2c3d-app-id" if user_type == "servicePrincipal" else "ops@example.com",
        "AZ_OID": oid,
        "AZ_FEATURE_STATE": feature_state,
        "CCS_SSH_PUBLIC_KEY": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStandIn ops@example",
        "CCS_INDEX_TIMEOUT": "30",
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", str(repo / "infra" / "deploy.sh"), "-g", "rg-ccs",
         *(["-l", location] if location else []), *args],
        cwd=repo, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls


def commands(calls: list[list[str]]) -> list[str]:
    """Each call's command words ("deployment group create"), in order."""
    out = []
    for call in calls:
        words = []
        for arg in call:
            if arg.startswith("-"):
                break
            words.append(arg)
        out.append(" ".join(words))
    return out


def parameters(call: list[str]) -> dict[str, Any]:
    """``--parameters name=value`` pairs of a deployment call (files are left out)."""
    found: dict[str, Any] = {}
    for i, arg in enumerate(call):
        if arg == "--parameters":
            for item in call[i + 1 :]:
                if item.startswith("-"):
                    break
                if "=" in item:
                    name, value = item.split("=", 1)
                    found[name] = value
    return found


def assert_no_graph(calls: list[list[str]]) -> None:
    assert calls, "deploy.sh made no az call"
    assert not [c for c in calls if c[:1] == ["ad"]], "deploy.sh called Microsoft Graph (az ad)"


def test_full_deploy_as_an_oidc_service_principal(repo: Path) -> None:
    proc, calls = run_deploy(repo)
    assert proc.returncode == 0, proc.stderr
    assert_no_graph(calls)
    cmds = commands(calls)
    # Feature state unreadable (resource-group-scoped principal): a warning, not a stop.
    assert "feature show" in cmds
    assert "cannot read the EncryptionAtHost feature state" in proc.stdout
    # The five steps, in order: infra, bindings upload, code, indexed, Event Grid subscription.
    creates = [c for c in calls if commands([c]) == ["deployment group create"]]
    assert [parameters(c)["deployEventSubscription"] for c in creates] == ["false", "true"]
    first, upload = cmds.index("deployment group create"), cmds.index("storage blob upload")
    publish = cmds.index("functionapp deployment source config-zip")
    indexed = cmds.index("functionapp function show", publish)
    last = len(cmds) - 1 - cmds[::-1].index("deployment group create")
    assert first < upload < publish < indexed < last
    # The deployer's object id and type come from the ARM token and az account show.
    for call in creates:
        assert parameters(call)["deployerPrincipalId"] == SP_OID
        assert parameters(call)["deployerPrincipalType"] == "ServicePrincipal"
        assert parameters(call)["deploySeiscompVm"] == "true"
    assert "account get-access-token" in cmds
    # The bindings archive went up with Entra ID, and the run finished.
    upload_call = calls[upload]
    assert upload_call[upload_call.index("--auth-mode") + 1] == "login"
    assert (repo / "build" / "deploy" / "bindings.tar.gz").stat().st_size > 0
    # Beside the archive, in the same container and before the code: the StationXML inventory,
    # holding exactly the streams the archive binds.
    uploads = [c for c in calls if commands([c]) == ["storage blob upload"]]
    assert [c[c.index("--name") + 1] for c in uploads] == ["bindings.tar.gz", "inventory.xml"]
    assert {c[c.index("--container-name") + 1] for c in uploads} == {"seiscomp"}
    assert all(c[c.index("--auth-mode") + 1] == "login" for c in uploads)
    assert cmds.index("storage blob upload", upload + 1) < publish
    inventory_file = Path(uploads[1][uploads[1].index("--file") + 1])
    assert inventory_file == repo / "build" / "deploy" / "inventory.xml"
    inventory = read_inventory(str(inventory_file), format="STATIONXML")
    in_xml = set(inventory.get_contents()["channels"])
    streams = (repo / "build" / "deploy" / "seiscomp" / "streams.txt").read_text().split()
    assert in_xml == set(streams) and streams
    assert "WireGuard public key: c3RhbmQtaW4=" in proc.stdout
    assert "[deploy" in proc.stdout and "done" in proc.stdout


def test_what_if_as_an_oidc_service_principal(repo: Path) -> None:
    proc, calls = run_deploy(repo, "--what-if")
    assert proc.returncode == 0, proc.stderr
    assert_no_graph(calls)
    cmds = commands(calls)
    assert cmds.count("deployment group what-if") == 1
    # Nothing is changed: no deployment, no group, no upload, no publish.
    changing = {"deployment group create", "group create", "storage blob upload",
                "functionapp deployment source config-zip"}  # fmt: skip
    assert not changing & set(cmds)
    what_if = calls[cmds.index("deployment group what-if")]
    assert parameters(what_if)["deployerPrincipalId"] == SP_OID
    assert parameters(what_if)["deployEventSubscription"] == "false"  # no deployment yet


def test_a_user_login_and_an_explicit_object_id(repo: Path) -> None:
    proc, calls = run_deploy(repo, "--what-if", "--no-vm", user_type="user", oid=USER_OID)
    assert proc.returncode == 0, proc.stderr
    what_if = calls[commands(calls).index("deployment group what-if")]
    assert parameters(what_if)["deployerPrincipalId"] == USER_OID
    assert parameters(what_if)["deployerPrincipalType"] == "User"
    assert "feature show" not in commands(calls)  # no VM, no encryption-at-host check
    # A workflow variable wins over the token, and then no token is read at all.
    explicit = "11111111-2222-4333-8444-555555555555"
    proc, calls = run_deploy(repo, "--what-if", env={"CCS_DEPLOYER_OBJECT_ID": explicit})
    assert proc.returncode == 0, proc.stderr
    what_if = calls[commands(calls).index("deployment group what-if")]
    assert parameters(what_if)["deployerPrincipalId"] == explicit
    assert "account get-access-token" not in commands(calls)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature_state": "NotRegistered"}, "az feature register --namespace Microsoft.Compute"),
        ({"oid": "not-an-object-id"}, "set CCS_DEPLOYER_OBJECT_ID"),
        ({"group_exists": False, "location": None}, "does not exist: give -l LOCATION"),
        ({"group_exists": False, "location": "swedencentrl"}, "is not a region of this"),
        ({"env": {"AZ_NO_RIGHTS": "1"}}, "no rights on resource group rg-ccs"),
    ],
)
def test_bad_input_stops_before_changing_anything(
    repo: Path, kwargs: dict[str, Any], message: str
) -> None:
    proc, calls = run_deploy(repo, **kwargs)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert_no_graph(calls)
    changing = {"deployment group create", "group create", "storage blob upload"}
    assert not changing & set(commands(calls))


def test_a_missing_resource_group_is_created_in_the_given_location(repo: Path) -> None:
    proc, calls = run_deploy(repo, "--skip-code", group_exists=False)
    assert proc.returncode == 0, proc.stderr
    create = calls[commands(calls).index("group create")]
    assert create[create.index("-l") + 1] == "swedencentral"
    assert commands(calls).index("group create") < commands(calls).index("deployment group create")
