"""Health against a real Azurite: healthy, then a stopped Azurite reported as down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import azurite
from shared_code.health import check_health
from shared_code.settings import load_settings

pytestmark = pytest.mark.azurite


def _create_resources(env: dict[str, str]) -> None:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    conn = env["PIPELINE_STORAGE"]
    BlobServiceClient.from_connection_string(conn).create_container(env["RAW_CONTAINER"])
    QueueServiceClient.from_connection_string(conn).create_queue(env["CONVERT_QUEUE"])


def test_healthy(pipeline_env: dict[str, str]) -> None:
    _create_resources(pipeline_env)
    ok, body = check_health(load_settings(pipeline_env))
    assert ok, body
    assert body["status"] == "ok" and body["down"] == []
    assert set(body["checks"]) == {"blob", "queue", "table", "share"}
    assert "not created yet" in body["checks"]["table"]["detail"]
    share = Path(pipeline_env["SHARE_ROOT"])
    assert list((share / "staging").iterdir()) == []  # the probe is cleaned up


def test_missing_container_and_unmounted_share(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**pipeline_env, "SHARE_ROOT": str(tmp_path / "not-mounted")}
    ok, body = check_health(load_settings(env))
    assert not ok
    assert set(body["down"]) == {"blob", "queue", "share"}
    assert "does not exist" in body["checks"]["blob"]["detail"]
    assert "mounted" in body["checks"]["share"]["detail"]
    assert not (tmp_path / "not-mounted").exists()  # never papered over


def test_stopped_azurite_is_503_worthy(pipeline_env: dict[str, str], tmp_path: Path) -> None:
    instance = azurite.start(tmp_path / "azurite")
    try:
        env = {**pipeline_env, "PIPELINE_STORAGE": instance.connection_string}
        _create_resources(env)
        settings = load_settings(env)
        ok, body = check_health(settings)
        assert ok, body
    finally:
        instance.stop()
    ok, body = check_health(settings, timeout_s=2.0)
    assert not ok
    assert body["status"] == "down"
    assert set(body["down"]) == {"blob", "queue", "table"}
    assert body["checks"]["share"]["ok"] is True
    text = json.dumps(body)
    assert azurite.ACCOUNT_KEY not in text and "AccountKey" not in text
