"""The ledger against a real Azurite: claims, duplicates, races, leases, replays."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared_code import ledger as ledger_module
from shared_code.etags import canonical_etag
from shared_code.ledger import Ledger, row_key
from shared_code.settings import load_settings

pytestmark = pytest.mark.azurite

BLOB = "snorre/2024/05/01/rec#1?.segy"  # characters Table keys forbid
ETAG = "0x8DC1111111111111"
SAS = "https://acct.blob.core.windows.net/raw/x.segy?sv=2022-11-02&sig=SECRETSIG"


@pytest.fixture
def ledger(pipeline_env: dict[str, str]) -> Ledger:
    return Ledger.from_settings(load_settings(pipeline_env))


def _begin(ledger: Ledger, etag: str = ETAG, **kwargs: object) -> bool:
    return ledger.begin(
        "snorre", BLOB, etag, event_id="evt-1", event_time="2024-05-01T00:00:00Z", **kwargs
    )


def test_row_key_is_table_safe_and_etag_quote_insensitive() -> None:
    key = row_key(BLOB, f'"{ETAG}"')
    assert key == row_key(BLOB, ETAG)
    assert not any(c in key for c in "/\\#?") and all(ord(c) >= 32 for c in key)
    assert canonical_etag('W/"0x1"') == "0x1"


def test_new_blob_then_duplicate_delivery(ledger: Ledger) -> None:
    assert _begin(ledger, url=SAS) is True
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None
    assert row["state"] == "received" and row["attempts"] == 1 and row["blob"] == BLOB
    assert "SECRETSIG" not in row["url"]
    # duplicate while the first is still running (lease valid)
    assert _begin(ledger) is False
    ledger.mark_decimated("snorre", BLOB, ETAG, "decimated/snorre/2024/05/01/rec.segy")
    # duplicate after it finished decimate, and after convert
    assert _begin(ledger) is False
    ledger.mark_converted("snorre", BLOB, f'"{ETAG}"', ["mseed/snorre/a.mseed"])
    assert _begin(ledger) is False
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None
    assert row["state"] == "converted" and row["attempts"] == 1
    assert row["mseed_paths"] == ["mseed/snorre/a.mseed"]
    assert row["decimated_path"] == "decimated/snorre/2024/05/01/rec.segy"


def test_concurrent_duplicates_exactly_one_wins(ledger: Ledger) -> None:
    ledger.ensure_table()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def race() -> None:
        barrier.wait()
        results.append(_begin(ledger))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_concurrent_takeover_of_expired_lease_exactly_one_wins(ledger: Ledger) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    assert _begin(ledger, lease_seconds=60, now=past) is True
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        results.append(_begin(ledger))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["attempts"] == 2


def test_new_etag_is_processed_again(ledger: Ledger) -> None:
    assert _begin(ledger) is True
    ledger.mark_converted("snorre", BLOB, ETAG, ["mseed/snorre/a.mseed"])
    assert _begin(ledger, etag="0x8DC2222222222222") is True
    assert ledger.get("snorre", BLOB, "0x8DC2222222222222") is not None
    assert len(ledger.query(field="snorre")) == 2


def test_lease_expiry_lets_a_retry_in(ledger: Ledger) -> None:
    t0 = datetime.now(UTC)
    assert _begin(ledger, lease_seconds=60, now=t0) is True
    assert _begin(ledger, lease_seconds=60, now=t0 + timedelta(seconds=30)) is False
    assert _begin(ledger, lease_seconds=60, now=t0 + timedelta(seconds=61)) is True
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["attempts"] == 2 and row["state"] == "received"


def test_failed_then_replayed(ledger: Ledger) -> None:
    assert _begin(ledger) is True
    ledger.mark_failed(
        "snorre", BLOB, ETAG,
        stage="decimate", reason=f"403 reading {SAS}", failure_path="failed/2024-05-01/x.json",
    )  # fmt: skip
    failed = ledger.query(state="failed")
    assert [r["blob"] for r in failed] == [BLOB]
    assert "SECRETSIG" not in failed[0]["reason"] and failed[0]["stage"] == "decimate"
    assert failed[0]["failure_path"] == "failed/2024-05-01/x.json"
    # the cause is fixed; a replay claims it again
    assert _begin(ledger) is True
    ledger.mark_decimated("snorre", BLOB, ETAG, "decimated/snorre/x.segy")
    ledger.mark_converted("snorre", BLOB, ETAG, ["mseed/snorre/x.mseed"])
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["state"] == "converted" and row["attempts"] == 2
    assert row["reason"] == ""


def test_redrive_reprocesses_a_finished_version_but_not_a_running_one(ledger: Ledger) -> None:
    assert _begin(ledger) is True
    assert _begin(ledger, redrive=True) is False  # still running: never doubled
    ledger.mark_decimated("snorre", BLOB, ETAG, "decimated/snorre/x.segy")
    assert _begin(ledger) is False
    assert _begin(ledger, redrive=True) is True


def test_query_and_summary(ledger: Ledger) -> None:
    assert ledger.summary() == {}
    assert ledger.query() == []
    for i in range(3):
        ledger.begin("grane", f"grane/f{i}.segy", "0x1", event_id=f"e{i}", event_time="")
    ledger.mark_failed("grane", "grane/f0.segy", "0x1", stage="convert", reason="bad")
    ledger.mark_converted("grane", "grane/f1.segy", "0x1", ["mseed/grane/f1.mseed"])
    _begin(ledger)
    assert ledger.summary() == {
        "grane": {"failed": 1, "converted": 1, "received": 1},
        "snorre": {"received": 1},
    }
    assert [r["blob"] for r in ledger.query(field="grane", state="failed")] == ["grane/f0.segy"]
    assert len(ledger.query(since=datetime.now(UTC) - timedelta(minutes=5))) == 4
    assert ledger.query(since=datetime.now(UTC) + timedelta(minutes=5)) == []
    assert len(ledger.query(until=datetime.now(UTC) + timedelta(minutes=5))) == 4
    with pytest.raises(ValueError, match="state"):
        ledger.query(state="lost")


def test_bad_table_name_names_the_setting(pipeline_env: dict[str, str]) -> None:
    env = {**pipeline_env, "LEDGER_TABLE": "led-ger"}
    with pytest.raises(ValueError, match="LEDGER_TABLE"):
        Ledger.from_settings(load_settings(env))


def test_states_constant() -> None:
    assert ledger_module.STATES == (
        "received", "decimated", "converted", "failed", "superseded", "deleted",
    )  # fmt: skip


def test_source_deleted_version_is_not_redone(ledger: Ledger) -> None:
    assert _begin(ledger) is True
    ledger.mark_source_deleted("snorre", BLOB, ETAG, "source deleted before it was read")
    assert _begin(ledger) is False  # a redelivery of a vanished blob: nothing to retry
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["state"] == "deleted" and "source deleted" in row["reason"]
    assert [r["blob"] for r in ledger.query(state="deleted")] == [BLOB]


def test_failed_row_keeps_its_input_within_the_table_limit(ledger: Ledger) -> None:
    assert _begin(ledger) is True
    event = {"id": "evt-1", "subject": BLOB, "data": {"eTag": ETAG}}
    ledger.mark_failed("snorre", BLOB, ETAG, stage="decimate", reason="share full", event=event)
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["state"] == "failed" and row["event"]
    assert json.loads(row["event"]) == event
    # Past a String property's 64 KiB (32 K UTF-16 characters) the input is dropped, not the
    # failure: the row is still marked (Azurite enforces the limit as Azure does).
    huge = "x" * (ledger_module.MAX_INPUT_CHARS + 1)
    ledger.mark_failed("snorre", BLOB, ETAG, stage="convert", reason="share full", message=huge)
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["stage"] == "convert" and row["message"] == ""


def test_superseded_version_is_not_redone(ledger: Ledger) -> None:
    assert _begin(ledger) is True
    ledger.mark_superseded("snorre", BLOB, ETAG)
    assert _begin(ledger) is False
    row = ledger.get("snorre", BLOB, ETAG)
    assert row is not None and row["state"] == "superseded"
    assert [
        r["blob"] for r in ledger.query(since=datetime.now(UTC) - timedelta(hours=1), by="created")
    ] == [BLOB]
    with pytest.raises(ValueError, match="by"):
        ledger.query(by="deleted")


def test_local_ledger_creates_its_table(pipeline_env: dict[str, str], azurite_conn: str) -> None:
    from azure.data.tables import TableServiceClient

    ledger = Ledger.from_settings(load_settings(pipeline_env))
    assert ledger.create_if_missing  # a connection string: Azurite, locally
    assert _begin(ledger) is True
    names = {t.name for t in TableServiceClient.from_connection_string(azurite_conn).list_tables()}
    assert pipeline_env["LEDGER_TABLE"] in names


def test_azure_ledger_never_creates_its_table(
    pipeline_env: dict[str, str], azurite_conn: str
) -> None:
    """Identity-based storage: the table is the Bicep's; the app's role could not create it."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableServiceClient

    identity = {k: v for k, v in pipeline_env.items() if k != "PIPELINE_STORAGE"}
    for service in ("blob", "queue", "table"):
        identity[f"PIPELINE_STORAGE__{service}ServiceUri"] = f"https://acct.{service}.example"
    settings = load_settings(identity)
    assert settings.storage.provisioned
    assert Ledger.from_settings(settings).create_if_missing is False
    # The same ledger on Azurite, with the Azure setting: a missing table stays missing.
    service = TableServiceClient.from_connection_string(azurite_conn)
    table = pipeline_env["LEDGER_TABLE"]
    ledger = Ledger(service.get_table_client(table), create_if_missing=False)
    with pytest.raises(ResourceNotFoundError):
        _begin(ledger)
    assert table not in {t.name for t in service.list_tables()}


def test_rows_written_under_the_first_release_keys_are_found(ledger: Ledger) -> None:
    """A row the first release wrote (RowKey from its ``blob_key``: the name's last 60
    characters) for a long name it accepted is the row the ledger reads now; otherwise
    reconcile would find no row and re-drive the blob."""
    import hashlib
    import re

    def first_row_key(blob: str, etag: str) -> str:  # eb5fbbc's blob_key(blob, etag)
        digest = hashlib.sha256("\0".join((blob, etag)).encode("utf-8", "surrogatepass"))
        safe = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", blob)[-60:].strip("._") or "blob"
        return f"{safe}-{digest.hexdigest()[:16]}"

    blob = "snorre/2024/05/01/line-4_shot=17+gain@12dB/" + "Rec" * 30 + ".segy"
    ledger.ensure_table()
    ledger.table.create_entity(
        {"PartitionKey": "snorre", "RowKey": first_row_key(blob, ETAG), "blob": blob}
    )
    row = ledger.get("snorre", blob, f'"{ETAG}"')
    assert row is not None and row["blob"] == blob
