"""Bad input: a clear error naming the blob and the reason, a replayable failure record, no
retry (the trigger returns normally), no message queued, and the raw blob untouched."""

import pytest

from scripts.local_host import deliver_event
from scripts.sample_data import array_record, write_segy

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 600


def _assert_failed(pipeline, blob_fragment: str, reason_fragment: str) -> dict:
    (record,) = pipeline.failures()
    assert record["stage"] == "decimate"
    assert blob_fragment in record["blob"]
    assert reason_fragment in record["reason"], record["reason"]
    assert record["permanent"] is True
    assert record["event"]["eventType"] == "Microsoft.Storage.BlobCreated"  # replayable
    assert not pipeline.queue.peek_messages()
    assert not list((pipeline.share / "decimated").rglob("*.*"))
    return record


def _deliver_uploaded(pipeline, blob: str, payload: bytes) -> None:
    props = pipeline.upload(blob, payload)
    deliver_event(pipeline.event(blob, props["etag"], props["size"]))  # must not raise
    assert pipeline.container.download_blob(blob).readall() == payload  # untouched


def test_empty_blob(pipeline) -> None:
    _deliver_uploaded(pipeline, "snorre/empty.sgy", b"")
    _assert_failed(pipeline, "snorre/empty.sgy", "empty")


def test_truncated_segy(pipeline, tmp_path) -> None:
    data = write_segy(
        tmp_path / "t.sgy", array_record(n_stations=1, seconds=1.0), 1000.0
    ).read_bytes()
    _deliver_uploaded(pipeline, "snorre/truncated.sgy", data[: len(data) - 1000])
    _assert_failed(pipeline, "snorre/truncated.sgy", "truncated")


def test_not_seismic_data(pipeline) -> None:
    _deliver_uploaded(pipeline, "snorre/picture.sgy", PNG)
    _assert_failed(pipeline, "snorre/picture.sgy", "not")


def test_unknown_field(pipeline) -> None:
    _deliver_uploaded(pipeline, "troll/x.sgy", PNG)
    _assert_failed(pipeline, "troll/x.sgy", "unknown field 'troll'")


def test_blob_outside_raw_container(pipeline) -> None:
    deliver_event(pipeline.event("snorre/x.sgy", container="elsewhere"))
    _assert_failed(pipeline, "snorre/x.sgy", "outside the raw container")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("snorre/../../etc/passwd", "'..'"),
        ("/snorre/abs.sgy", "absolute"),
        ("snorre/ctl\x07.sgy", "control characters"),
    ],
    ids=["dotdot", "absolute", "control"],
)
def test_hostile_blob_names(pipeline, name: str, reason: str) -> None:
    event = pipeline.event(name)
    event["subject"] = (
        f"/blobServices/default/containers/{pipeline.env['RAW_CONTAINER']}/blobs/{name}"
    )
    deliver_event(event)
    record = _assert_failed(pipeline, "", reason)
    assert record["blob"] == name
    failed = pipeline.share / "failed"
    written = [
        p for p in pipeline.share.parent.rglob("*") if p.is_file() and failed not in p.parents
    ]
    assert not [p for p in written if "passwd" in p.name or "abs" in p.name]
    assert ".." not in "".join(p.name for p in failed.rglob("*"))


def test_other_event_types_are_ignored(pipeline) -> None:
    event = pipeline.event("snorre/x.sgy")
    event["eventType"] = "Microsoft.Storage.BlobDeleted"
    deliver_event(event)
    assert not pipeline.failures()
    assert not pipeline.queue.peek_messages()


def test_data_lake_create_file_is_not_an_empty_blob(pipeline) -> None:
    # On hierarchical-namespace accounts an upload is CreateFile (0 bytes) then FlushWithClose.
    event = pipeline.event("snorre/x.sgy", size=0)
    event["data"]["api"] = "CreateFile"
    deliver_event(event)
    assert not pipeline.failures()
    assert not pipeline.queue.peek_messages()
