"""The SeisComP VM publishes its health file to blob storage, executed in the boot sandbox of
tests/test_infra_vm_boot.py: every write of /var/lib/ccs/health.json (before each step, after a
failure, at the end, and the heartbeat's) is a Put Blob with the VM identity's token carrying the
same bytes, and a storage outage never fails provisioning; the next write publishes again.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_infra_vm_boot import CLOUD_CONFIG, STEPS, VM, read_cloud_config

HEALTH_URL = "https://stccspipe.blob.core.windows.net/vmhealth/health.json"
TOKEN_HEADER = "Authorization: Bearer token-for-https://storage.azure.com/"


@pytest.fixture
def vm(tmp_path: Path) -> VM:
    return VM(tmp_path / "vm")


def puts(vm: VM) -> list[dict]:
    path = vm.root / "puts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def published(vm: VM) -> bytes:
    return (vm.root / "blobstore/vmhealth/health.json").read_bytes()


def local(vm: VM) -> bytes:
    return (vm.root / "var/lib/ccs/health.json").read_bytes()


def fail(vm: VM, *faults: tuple[str, list[str]]) -> None:
    (vm.root / "faults.json").write_text(
        json.dumps([{"cmd": cmd, "contains": contains} for cmd, contains in faults])
    )


def report(vm: VM) -> None:
    """What ccs-health.timer runs."""
    result = vm.run([str(vm.root / "usr/local/sbin/ccs-provision"), "--report"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_health_write_is_put_with_the_identity_token(vm: VM) -> None:
    result = vm.first_boot()
    assert result.returncode == 0, result.stdout + result.stderr
    uploads = puts(vm)
    assert uploads
    for upload in uploads:
        assert upload["url"] == HEALTH_URL
        assert TOKEN_HEADER in upload["headers"]
        assert "x-ms-blob-type: BlockBlob" in upload["headers"]
        assert "x-ms-version: 2021-08-06" in upload["headers"]
    # The token was asked of the metadata endpoint for storage, never written anywhere.
    assert any(
        "identity/oauth2/token" in " ".join(c["argv"]) and "resource=https://storage.azure.com/"
        in " ".join(c["argv"]) for c in vm.calls("curl")
    )  # fmt: skip
    assert "token-for-" not in result.stdout + result.stderr + vm.console()
    assert "token-for-" not in local(vm).decode()
    # The blob is the local file, byte for byte, and says seedlink is running.
    assert published(vm) == local(vm)
    assert json.loads(published(vm))["status"] == "ok"
    # One upload after each step: before step k runs, the published file shows the steps
    # before it done and it pending. Only the very first write, before the config step has
    # read userData (and so CCS_HEALTH_URL), cannot be published.
    bodies = [json.loads(u["body"]) for u in uploads]
    for k, step in enumerate(STEPS[1:], start=1):
        assert any(
            b["status"] == "running"
            and all(b["steps"][s]["state"] == "done" for s in STEPS[:k])
            and b["steps"][step]["state"] == "pending"
            for b in bodies
        ), step
    assert len(uploads) == len(STEPS)  # 8 "running" writes + the final "ok"
    assert result.stdout.count("health: published") == len(uploads)


def test_a_failed_step_is_published_and_so_is_each_retry(vm: VM) -> None:
    fail(vm, ("apt-get", ["install"]))
    assert vm.first_boot().returncode != 0
    blob = json.loads(published(vm))
    assert published(vm) == local(vm)
    assert blob["status"] == "failed" and blob["failed_step"] == "deps"
    assert blob["steps"]["deps"]["failures"] == 1 and blob["detail"]
    assert TOKEN_HEADER in puts(vm)[-1]["headers"]

    assert vm.unit_restart().returncode != 0  # Restart=on-failure, after the backoff
    assert json.loads(published(vm))["steps"]["deps"]["failures"] == 2
    assert published(vm) == local(vm)

    vm.clear_faults()
    assert vm.unit_restart().returncode == 0
    assert json.loads(published(vm))["status"] == "ok"
    assert published(vm) == local(vm)


def test_a_storage_outage_does_not_fail_provisioning(vm: VM) -> None:
    fail(vm, ("curl", ["-X PUT", "vmhealth"]))
    result = vm.first_boot()
    assert result.returncode == 0, result.stdout + result.stderr
    assert vm.seedlink_running()
    assert json.loads(local(vm))["status"] == "ok"
    assert not puts(vm)
    assert "health: publish to " + HEALTH_URL + " failed" in result.stdout
    # Storage back: the next write (here the heartbeat) publishes the current file.
    vm.clear_faults()
    report(vm)
    assert published(vm) == local(vm)
    assert json.loads(published(vm))["status"] == "ok"


def test_no_identity_token_is_logged_not_fatal_to_publishing(vm: VM) -> None:
    # The metadata endpoint refusing the storage token (identity not ready yet).
    fail(vm, ("curl", ["oauth2/token", "storage.azure.com"]))
    result = vm.first_boot()
    # The bindings step also needs the storage token: it fails, publishing does not.
    assert "provision FAILED at step bindings" in result.stdout
    assert "health: not published (no managed identity token)" in result.stdout
    assert not puts(vm)
    vm.clear_faults()
    assert vm.unit_restart().returncode == 0
    assert json.loads(published(vm))["status"] == "ok"


def test_the_heartbeat_refreshes_and_republishes_the_last_outcome(vm: VM) -> None:
    fail(vm, ("nft", ["-c"]))
    assert vm.first_boot().returncode != 0
    before = json.loads(local(vm))
    # As if the last write were an hour old: the heartbeat rewrites "updated".
    stale = {**before, "updated": "2000-01-01T00:00:00Z"}
    (vm.root / "var/lib/ccs/health.json").write_text(json.dumps(stale))
    count, checks = len(puts(vm)), len(vm.calls("nft"))
    report(vm)
    after = json.loads(local(vm))
    assert after["updated"] != "2000-01-01T00:00:00Z"
    assert (after["status"], after["failed_step"], after["detail"]) == (
        "failed", "firewall", before["detail"],
    )  # fmt: skip
    assert after["steps"]["firewall"]["failures"] == 1  # a report is not a retry
    assert len(puts(vm)) == count + 1 and published(vm) == local(vm)
    assert len(vm.calls("nft")) == checks  # no step ran


def test_the_heartbeat_leaves_a_running_provisioning_alone(vm: VM) -> None:
    assert vm.first_boot().returncode == 0
    count = len(puts(vm))
    lock = vm.root / "run/ccs/provision.lock"
    holder = vm.run(["flock", str(lock), "-c", f"{vm.root}/usr/local/sbin/ccs-provision --report"])
    assert holder.returncode == 0  # the inner report could not take the lock: it left
    assert len(puts(vm)) == count


def test_the_heartbeat_timer_is_installed_and_started() -> None:
    config = read_cloud_config(CLOUD_CONFIG.read_text())
    files = {e["path"]: e["content"] for e in config["write_files"]}
    service = files["/etc/systemd/system/ccs-health.service"]
    assert "ExecStart=/usr/local/sbin/ccs-provision --report" in service
    timer = files["/etc/systemd/system/ccs-health.timer"]
    assert "OnUnitActiveSec=5min" in timer and "WantedBy=timers.target" in timer
    runcmd = [" ".join(c) for c in config["runcmd"]]
    assert any(c.startswith("systemctl enable") and "ccs-health.timer" in c for c in runcmd)
    assert "systemctl start --no-block ccs-health.timer" in runcmd
