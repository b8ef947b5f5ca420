"""The SeisComP VM's health in the status endpoint, read from Azurite: a report the VM's own
boot script wrote (the boot sandbox of tests/test_infra_vm_boot.py) shows with its status and
age; a missing one is unknown; an old one is stale (unknown); the app's own health endpoint does
not go down because the VM is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared_code import vm_health
from shared_code.settings import get_settings, load_settings
from tests.test_infra_vm_boot import VM
from tests.test_operations_functions import _call, _request

pytestmark = pytest.mark.azurite


@pytest.fixture
def env(pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for key, value in pipeline_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    get_settings.cache_clear()
    yield pipeline_env
    get_settings.cache_clear()


def publish(env: dict[str, str], data: bytes) -> None:
    """Put the report where the VM puts it (a block blob in VM_HEALTH_CONTAINER)."""
    from azure.storage.blob import BlobServiceClient

    blobs = BlobServiceClient.from_connection_string(env["PIPELINE_STORAGE"])
    container = blobs.get_container_client(env["VM_HEALTH_CONTAINER"])
    if not container.exists():
        container.create_container()
    container.upload_blob(load_settings(env).vm_health_blob, data, overwrite=True)


def booted_vm_report(tmp_path: Path, fault: tuple[str, list[str]] | None = None) -> bytes:
    """The bytes the VM's boot script uploaded (the Put Blob body of its last write)."""
    vm = VM(tmp_path / "vm")
    if fault:
        (vm.root / "faults.json").write_text(json.dumps([{"cmd": fault[0], "contains": fault[1]}]))
    vm.first_boot()
    return (vm.root / "blobstore/vmhealth/health.json").read_bytes()


def status_vm() -> dict[str, Any]:
    response = _call("status", _request("status"))
    assert response.status_code == 200, response.get_body()
    vm: dict[str, Any] = json.loads(response.get_body())["vm"]
    return vm


def test_a_published_report_shows_in_status(env: dict[str, str], tmp_path: Path) -> None:
    publish(env, booted_vm_report(tmp_path))
    vm = status_vm()
    assert vm["source"] == f"{env['VM_HEALTH_CONTAINER']}/health.json"
    assert (vm["state"], vm["status"], vm["stale"]) == ("ok", "ok", False)
    assert vm["seedlink"] == "running" and vm["failed_step"] is None
    assert vm["release"] == "7.3.1-ubuntu24.04-x86_64"
    # Written seconds ago by the sandbox: age from the report's own "updated".
    updated = datetime.fromisoformat(vm["updated"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - updated).total_seconds() - vm["age_s"]) < 5
    assert 0 <= vm["age_s"] < vm_health.STALE_AFTER_S


def test_a_failed_vm_shows_its_step_and_detail(env: dict[str, str], tmp_path: Path) -> None:
    publish(env, booted_vm_report(tmp_path, ("apt-get", ["install"])))
    vm = status_vm()
    assert (vm["state"], vm["failed_step"]) == ("failed", "deps")
    assert "injected failure" in vm["detail"]
    assert vm["seedlink"] == "not running"
    # The app is not the VM: its own health stays up.
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    conn = env["PIPELINE_STORAGE"]
    BlobServiceClient.from_connection_string(conn).create_container(env["RAW_CONTAINER"])
    QueueServiceClient.from_connection_string(conn).create_queue(env["CONVERT_QUEUE"])
    assert _call("health", _request("health")).status_code == 200


def test_no_report_is_unknown(env: dict[str, str]) -> None:
    vm = status_vm()  # the container does not even exist locally
    assert vm["state"] == "unknown" and vm["stale"] is False
    assert "no health report at" in vm["reason"]
    publish(env, b"not json")
    vm = status_vm()
    assert vm["state"] == "unknown" and "is not a health report" in vm["reason"]


def test_an_old_report_is_stale(env: dict[str, str], tmp_path: Path) -> None:
    report = json.loads(booted_vm_report(tmp_path))
    old = datetime.now(UTC) - timedelta(seconds=vm_health.STALE_AFTER_S + 120)
    report["updated"] = old.strftime("%Y-%m-%dT%H:%M:%SZ")
    publish(env, json.dumps(report).encode())
    vm = status_vm()
    assert (vm["state"], vm["stale"], vm["status"]) == ("unknown", True, "ok")
    assert vm["age_s"] > vm_health.STALE_AFTER_S
    assert "stale after 20 min" in vm["reason"]


def test_interpret_edges() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    at = {"status": "ok", "updated": "2026-01-01T00:00:00Z"}
    exactly = now + timedelta(seconds=vm_health.STALE_AFTER_S)
    assert vm_health.interpret(at, exactly)["state"] == "ok"  # stale only beyond the threshold
    assert vm_health.interpret(at, exactly + timedelta(seconds=1))["state"] == "unknown"
    assert vm_health.interpret({**at, "status": "weird"}, now)["state"] == "unknown"
    assert vm_health.interpret({"status": "ok"}, now)["reason"] == "report has no 'updated'"
    running = vm_health.interpret({**at, "status": "running"}, now + timedelta(minutes=1))
    assert (running["state"], running["age_s"]) == ("running", 60.0)
