"""Reconciliation against a real Azurite: blobs whose event never came, crashed claims,
lost convert messages; and the poison queue's depth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared_code.ledger import Ledger
from shared_code.reconcile import find_unfinished, poison_queue_depth, run_reconcile
from shared_code.settings import Settings, load_settings

pytestmark = pytest.mark.azurite


@pytest.fixture
def settings(pipeline_env: dict[str, str]) -> Settings:
    return load_settings(pipeline_env)


@pytest.fixture
def container(settings: Settings) -> Any:
    from azure.storage.blob import BlobServiceClient

    conn = settings.storage.connection_string
    assert conn
    return BlobServiceClient.from_connection_string(conn).create_container(settings.raw_container)


def _upload(container: Any, name: str, payload: bytes = b"raw") -> str:
    blob = container.upload_blob(name, payload, overwrite=True)
    return str(blob.get_blob_properties().etag)


def _claim(ledger: Ledger, field: str, name: str, etag: str, lease_s: float = 600) -> None:
    assert ledger.begin(
        field, name, etag, event_id=f"evt-{name}", event_time="", lease_seconds=lease_s
    )


def test_find_unfinished(settings: Settings, container: Any) -> None:
    ledger = Ledger.from_settings(settings)
    etags = {}
    for name in ("done", "never-delivered", "failed", "running", "crashed", "lost-msg", "newver"):
        etags[name] = _upload(container, f"snorre/{name}.segy")
    _upload(container, "no-field-folder.segy")
    _claim(ledger, "snorre", "snorre/done.segy", etags["done"])
    ledger.mark_converted("snorre", "snorre/done.segy", etags["done"], ["mseed/snorre/done.mseed"])
    _claim(ledger, "snorre", "snorre/failed.segy", etags["failed"])
    ledger.mark_failed(
        "snorre", "snorre/failed.segy", etags["failed"], stage="decimate", reason="bad header"
    )
    _claim(ledger, "snorre", "snorre/running.segy", etags["running"], lease_s=3 * 3600)
    _claim(ledger, "snorre", "snorre/crashed.segy", etags["crashed"], lease_s=60)
    _claim(ledger, "snorre", "snorre/lost-msg.segy", etags["lost-msg"])
    ledger.mark_decimated("snorre", "snorre/lost-msg.segy", etags["lost-msg"], "decimated/x")
    _claim(ledger, "snorre", "snorre/newver.segy", etags["newver"])
    ledger.mark_converted("snorre", "snorre/newver.segy", etags["newver"], ["mseed/x"])
    _upload(container, "snorre/newver.segy", b"a new version")  # new ETag, no event yet

    # within the grace period nothing is unfinished
    soon = datetime.now(UTC) + timedelta(minutes=10)
    assert find_unfinished(container, ledger, 30, now=soon) == []

    later = datetime.now(UTC) + timedelta(hours=2)
    found = {b.name: b for b in find_unfinished(container, ledger, 30, now=later)}
    assert set(found) == {
        "snorre/never-delivered.segy",
        "snorre/crashed.segy",
        "snorre/lost-msg.segy",
        "snorre/newver.segy",
    }
    assert found["snorre/never-delivered.segy"].state == "missing"
    assert found["snorre/newver.segy"].state == "missing"
    assert found["snorre/crashed.segy"].state == "received"
    assert found["snorre/lost-msg.segy"].state == "decimated"
    assert found["snorre/never-delivered.segy"].field == "snorre"

    with_failed = find_unfinished(container, ledger, 30, now=later, include_failed=True)
    assert "snorre/failed.segy" in {b.name for b in with_failed}
    # beyond the lookback window nothing is looked at
    far = datetime.now(UTC) + timedelta(days=30)
    assert find_unfinished(container, ledger, 30, now=far, lookback_hours=24) == []


def test_run_reconcile_redrives_a_file_whose_event_never_came(
    settings: Settings, container: Any
) -> None:
    from azure.storage.queue import QueueServiceClient

    _upload(container, "grane/lost-event.segy")
    _upload(container, "grane/boom.segy")
    conn = settings.storage.connection_string
    assert conn
    poison = QueueServiceClient.from_connection_string(conn).create_queue(
        f"{settings.convert_queue}-poison"
    )
    poison.send_message("x")
    poison.send_message("y")
    calls: list[str] = []

    def redrive(s: Settings, name: str) -> None:
        calls.append(name)
        if name.endswith("boom.segy"):
            raise RuntimeError("https://a.blob.core.windows.net/raw/x?sv=1&sig=SECRET")

    report = run_reconcile(settings, redrive, now=datetime.now(UTC) + timedelta(hours=1))
    assert sorted(calls) == ["grane/boom.segy", "grane/lost-event.segy"]
    assert report.redriven == ["grane/lost-event.segy"]
    assert "grane/boom.segy" in report.errors and "SECRET" not in report.errors["grane/boom.segy"]
    assert report.poison_depth == 2
    assert report.as_dict()["unfinished"] == 2

    capped = run_reconcile(
        settings, lambda s, n: None, now=datetime.now(UTC) + timedelta(hours=1), max_redrives=1
    )
    assert len(capped.redriven) == 1 and capped.deferred == 1


def test_poison_queue_depth_absent_queue_is_zero(settings: Settings) -> None:
    from azure.storage.queue import QueueServiceClient

    conn = settings.storage.connection_string
    assert conn
    service = QueueServiceClient.from_connection_string(conn)
    assert poison_queue_depth(service, settings.convert_queue) == 0
