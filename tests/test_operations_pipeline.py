"""Operations through the real triggers on a real Azurite: idempotency, reconciliation, replay."""

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scripts.local_host import deliver_event
from scripts.sample_data import array_record, write_segy
from shared_code.fields import load_fields
from shared_code.ledger import Ledger
from shared_code.settings import get_settings
from tests.share_helpers import mseed_file

BLOB = "grane/2026/11/23/a.sgy"


@pytest.fixture(scope="module")
def segy_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("ops") / "a.sgy"
    return write_segy(path, array_record(n_stations=2, seconds=4.0), 1000.0).read_bytes()


def _messages(pipeline) -> int:
    return int(pipeline.queue.get_queue_properties().approximate_message_count)


def test_duplicate_delivery_does_nothing(pipeline, segy_bytes: bytes) -> None:
    event = pipeline.upload_and_deliver(BLOB, segy_bytes)
    assert _messages(pipeline) == 1
    deliver_event(event)  # Event Grid's at-least-once: the same event again
    assert _messages(pipeline) == 1
    pipeline.drain()
    deliver_event(event)  # ... also after it was converted
    assert _messages(pipeline) == 0
    row = Ledger.from_settings(get_settings()).get("grane", BLOB, event["data"]["eTag"])
    assert row and row["state"] == "converted"


def test_concurrent_duplicate_processes_once(pipeline, segy_bytes: bytes) -> None:
    props = pipeline.upload(BLOB, segy_bytes)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    barrier = threading.Barrier(3)

    def deliver() -> None:
        barrier.wait()
        deliver_event(event)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _messages(pipeline) == 1


def test_new_etag_is_processed_again(pipeline, segy_bytes: bytes) -> None:
    pipeline.upload_and_deliver(BLOB, segy_bytes)
    pipeline.drain()
    first = mseed_file(pipeline.share, BLOB).stat().st_mtime_ns
    other = bytearray(segy_bytes)
    other[-4:] = b"\x00\x00\x00\x07"  # a new version of the same blob
    pipeline.upload_and_deliver(BLOB, bytes(other))
    assert _messages(pipeline) == 1
    pipeline.drain()
    assert mseed_file(pipeline.share, BLOB).stat().st_mtime_ns > first


def test_reconciliation_picks_up_a_lost_event(pipeline, segy_bytes: bytes) -> None:
    from shared_code.pipeline import redrive_blob
    from shared_code.reconcile import run_reconcile

    pipeline.upload(BLOB, segy_bytes)  # uploaded, but its event never arrives
    report = run_reconcile(get_settings(), redrive_blob, now=datetime.now(UTC) + timedelta(hours=1))
    assert report.redriven == [BLOB]
    assert pipeline.drain().processed == 1
    assert mseed_file(pipeline.share, BLOB).is_file()
    # Nothing left to do on the next run.
    again = run_reconcile(get_settings(), redrive_blob, now=datetime.now(UTC) + timedelta(hours=1))
    assert again.redriven == []


def test_replay_of_a_failed_file_after_the_cause_is_fixed(
    pipeline, segy_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_code.cli import main

    root_config = Path(pipeline.env["FIELDS_CONFIG"]).read_text()
    config = tmp_path / "fields.toml"
    config.write_text(root_config.replace("[fields.grane]", "[fields.grane_retired]"))
    monkeypatch.setenv("FIELDS_CONFIG", str(config))
    get_settings.cache_clear()
    load_fields.cache_clear()

    event = pipeline.upload_and_deliver(BLOB, segy_bytes)
    (record,) = pipeline.failures()
    assert "unknown field 'grane'" in record["reason"]
    ledger = Ledger.from_settings(get_settings())
    assert ledger.get("grane", BLOB, event["data"]["eTag"])["state"] == "failed"

    config.write_text(root_config)  # the operator fixes the configuration
    load_fields.cache_clear()
    assert main(["replay", "--field", "grane", "--failed"]) == 0
    assert pipeline.drain().processed == 1
    assert mseed_file(pipeline.share, BLOB).is_file()
    assert ledger.get("grane", BLOB, event["data"]["eTag"])["state"] == "converted"


def test_replay_a_failure_record(pipeline, segy_bytes: bytes) -> None:
    from shared_code.cli import main

    props = pipeline.upload(BLOB, segy_bytes)
    event = pipeline.event(BLOB, props["etag"], props["size"], container="elsewhere")
    deliver_event(event)
    (path,) = [p for p in (pipeline.share / "failed").rglob("*.json")]
    # The cause: a wrong container in the event; the operator fixes the record and replays.
    text = path.read_text().replace('"elsewhere', f'"{pipeline.env["RAW_CONTAINER"]}')
    text = text.replace("containers/elsewhere/", f"containers/{pipeline.env['RAW_CONTAINER']}/")
    path.write_text(text)
    assert main(["replay", "--record", str(path.relative_to(pipeline.share))]) == 0
    assert pipeline.drain().processed == 1


def test_status_prints_the_ledger_summary(pipeline, segy_bytes: bytes, capsys) -> None:
    from shared_code.cli import main

    pipeline.upload_and_deliver(BLOB, segy_bytes)
    pipeline.drain()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "grane" in out and "converted" in out
