"""End to end on a real Azurite: BlobCreated → decimate → queue → convert → MiniSEED."""

import base64
import time
from pathlib import Path

import numpy as np
import pytest
from obspy import Stream, UTCDateTime, read

from scripts.sample_data import START, array_record, write_mseed, write_segy
from shared_code.messages import ConvertRequest
from shared_code.settings import get_settings
from tests.share_helpers import mseed_file

SEGY_BLOB = "snorre/2026/11/23/array.sgy"
MSEED_BLOB = "oseberg/2026/11/23/land.mseed"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("samples")
    segy = write_segy(tmp / "a.sgy", array_record(n_stations=3, seconds=6.0), 1000.0)
    mseed = write_mseed(tmp / "b.mseed", ["OSE01", "OSE02"], rate_hz=500.0, seconds=6.0)
    return {SEGY_BLOB: segy.read_bytes(), MSEED_BLOB: mseed.read_bytes()}


def _host_decode(message_text: str) -> ConvertRequest:
    # The host's queue trigger base64-decodes (host.json messageEncoding), then we parse.
    return ConvertRequest.from_json(base64.b64decode(message_text, validate=True))


@pytest.mark.parametrize("cloud", [False, True], ids=["eventgrid-schema", "cloudevents-schema"])
def test_segy_end_to_end(pipeline, samples: dict[str, bytes], cloud: bool) -> None:
    event = pipeline.upload_and_deliver(SEGY_BLOB, samples[SEGY_BLOB], cloud=cloud)

    (message,) = pipeline.queue.peek_messages()
    request = _host_decode(message.content)
    assert request.field == "snorre"
    assert request.source.name == SEGY_BLOB
    assert request.source.etag == event["data"]["eTag"]
    assert request.source.event_id == event["id"]
    assert request.source.url.endswith(SEGY_BLOB)
    assert request.integer_counts is True
    assert request.sampling_rate_hz == 250.0
    assert (pipeline.share / request.decimated_path).is_file()

    drained = pipeline.drain()
    assert drained.processed == 1 and not drained.poisoned, drained.errors
    st = read(str(mseed_file(pipeline.share, SEGY_BLOB)), details=True)
    assert len(st) == 12
    assert st[0].id == "XS.S0001.00.DPZ" and st[3].id == "XS.S0001.00.DDH"
    assert {tr.stats.sampling_rate for tr in st} == {250.0}
    assert {tr.stats.mseed.encoding for tr in st} == {"STEIM2"}
    assert {tr.stats.mseed.record_length for tr in st} == {512}
    assert all(tr.data.dtype == np.int32 for tr in st)
    # A lone file keeps its edges (filter support) for its neighbours; the seam sweep emits
    # them once the neighbours are overdue, and then the record starts on its first sample.
    assert st[0].stats.starttime > UTCDateTime(START)
    from shared_code.fields import load_fields
    from shared_code.seam_sweep import sweep

    settings = get_settings()
    swept = sweep(settings.share_root, load_fields(settings.fields_config), 30, time.time() + 3600)
    assert sorted(s.half for s in swept) == ["left", "right"]
    merged = Stream()
    for path in (pipeline.share / "mseed").rglob("*.mseed"):
        merged += read(str(path))
    assert not merged.get_gaps()
    merged.merge()
    assert all(tr.stats.starttime == UTCDateTime(START) for tr in merged)
    assert {tr.stats.npts for tr in merged} == {1500}
    # Raw blob untouched.
    blob = pipeline.container.get_blob_client(SEGY_BLOB)
    # Unchanged version: the SDK's quoted ETag is the event's bare one (as Azure sends it).
    assert blob.get_blob_properties().etag == f'"{event["data"]["eTag"]}"'
    assert blob.download_blob().readall() == samples[SEGY_BLOB]
    assert not pipeline.failures()


def test_mseed_rational_ratio_end_to_end(pipeline, samples: dict[str, bytes]) -> None:
    pipeline.upload_and_deliver(MSEED_BLOB, samples[MSEED_BLOB])
    drained = pipeline.drain()
    assert drained.processed == 1, drained.errors
    st = read(str(mseed_file(pipeline.share, MSEED_BLOB)))
    assert sorted({tr.id for tr in st}) == [
        f"XO.{sta}.00.EH{c}" for sta in ("OSE01", "OSE02") for c in "ENZ"
    ]
    assert {tr.stats.sampling_rate for tr in st} == {200.0}
    for tr in st:  # on the absolute 200 Hz grid
        assert tr.stats.starttime.ns % 5_000_000 == 0


def test_duplicate_delivery_is_harmless(pipeline, samples: dict[str, bytes]) -> None:
    event = pipeline.upload_and_deliver(SEGY_BLOB, samples[SEGY_BLOB])
    pipeline.drain()
    first = mseed_file(pipeline.share, SEGY_BLOB).read_bytes()
    from scripts.local_host import deliver_event

    deliver_event(event)
    pipeline.drain()
    assert mseed_file(pipeline.share, SEGY_BLOB).read_bytes() == first


def test_malformed_message_ends_in_poison_queue(pipeline) -> None:
    pipeline.queue.send_message(base64.b64encode(b'{"version": 99}').decode())
    drained = pipeline.drain()
    assert len(drained.poisoned) == 1
    assert drained.failed_attempts == 5  # host.json maxDequeueCount
    assert "version 99" in drained.errors[0]
    (record,) = pipeline.failures()
    assert record["stage"] == "convert" and "version 99" in record["reason"]
    assert record["attempts"] == 5
    assert not list((pipeline.share / "mseed").rglob("*.mseed"))


def test_message_in_wrong_encoding_goes_to_poison(pipeline) -> None:
    # A message sent without base64 (the SDK's default) cannot be decoded by the host.
    pipeline.queue.send_message("{not base64}")
    drained = pipeline.drain()
    assert drained.poisoned == ["{not base64}"]


def test_missing_decimated_file_is_recorded(pipeline, samples, share: Path) -> None:
    pipeline.upload_and_deliver(SEGY_BLOB, samples[SEGY_BLOB])
    (message,) = pipeline.queue.peek_messages()
    (share / _host_decode(message.content).decimated_path).unlink()
    drained = pipeline.drain()
    assert drained.poisoned and "not found" in drained.errors[0]
    assert any("not found" in r["reason"] for r in pipeline.failures())
