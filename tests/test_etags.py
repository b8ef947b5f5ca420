"""One canonical ETag: a blob version is named the same wherever its ETag enters.

Event Grid's ``data.eTag`` is bare, the blob SDK's ``BlobProperties.etag`` is quoted (the ETag
header). Events here are Microsoft's documented examples (tests/azure_events.py) and ETags are
Azurite's real ones, never made up, so the two spellings meet as they do in Azure.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pytest
from obspy import Stream, read

from scripts.local_host import deliver_event
from scripts.sample_data import START, array_record, split_record
from shared_code.dsp import decimate, design, output_span
from shared_code.etags import canonical_etag, wire_etag
from shared_code.events import make_event_grid_event, parse_blob_created, to_cloud_event
from shared_code.fields import load_fields
from shared_code.ledger import Ledger
from shared_code.seam_sweep import sweep
from shared_code.settings import get_settings
from shared_code.storage import BlobChangedError, download_blob
from shared_code.waveforms import TraceMeta
from tests.azure_events import CLOUD_EVENT_EXAMPLE, EVENT_GRID_EXAMPLE, like_azure
from tests.numeric_bounds import difference_bound

RATE, TARGET, N_FILES, SECONDS = 1000.0, 100.0, 3, 12.0
T0_NS = int(START.timestamp()) * 1_000_000_000


def test_documented_events_parse_to_their_bare_etag() -> None:
    grid = parse_blob_created(copy.deepcopy(EVENT_GRID_EXAMPLE))
    cloud = parse_blob_created(copy.deepcopy(CLOUD_EVENT_EXAMPLE))
    assert (grid.schema, grid.etag) == ("EventGrid", "0x8D4BCC2E4835CD0")
    assert (cloud.schema, cloud.etag) == ("CloudEvents", "0x8D76C39E4407333")
    assert canonical_etag(grid.etag) == grid.etag  # already canonical: nothing to strip


def test_sdk_etag_and_event_etag_are_one_version(pipeline) -> None:
    props = pipeline.container.upload_blob("grane/x.sgy", b"payload").get_blob_properties()
    sdk = str(props.etag)
    assert sdk.startswith('"') and sdk.endswith('"')  # the SDK keeps the header's quotes
    event = like_azure(pipeline.blobs.url, pipeline.container.container_name, "grane/x.sgy",
                       sdk, props.size)  # fmt: skip
    bare = event["data"]["eTag"]
    # Every entry point names the version identically: both event schemas, an event rebuilt
    # from the SDK's properties (redrive, reconcile), a weak-tagged header value.
    rebuilt = make_event_grid_event(
        account_url=pipeline.blobs.url, container=pipeline.container.container_name,
        blob_name="grane/x.sgy", etag=sdk, content_length=props.size,
    )  # fmt: skip
    assert rebuilt["data"]["eTag"] == bare  # as Azure publishes it: bare
    for payload in (event, to_cloud_event(event), rebuilt):
        assert parse_blob_created(payload).etag == bare
    assert canonical_etag(sdk) == canonical_etag(f"W/{sdk}") == bare
    assert wire_etag(bare) == wire_etag(sdk) == sdk


def test_download_stays_conditional_with_either_spelling(pipeline, tmp_path: Path) -> None:
    client = pipeline.container.upload_blob("grane/x.sgy", b"first", overwrite=True)
    old = str(client.get_blob_properties().etag)
    for etag in (old, canonical_etag(old)):
        size = download_blob(get_settings(), pipeline.container.container_name, "grane/x.sgy",
                             etag, tmp_path / "raw")  # fmt: skip
        assert size == 5 and (tmp_path / "raw").read_bytes() == b"first"
    client.upload_blob(b"second", overwrite=True)  # a new version: the old ETag must not match
    for etag in (old, canonical_etag(old)):
        with pytest.raises(BlobChangedError, match="changed since event"):
            download_blob(get_settings(), pipeline.container.container_name, "grane/x.sgy",
                          etag, tmp_path / "raw")  # fmt: skip


def test_failure_record_ledger_and_event_agree(pipeline) -> None:
    # An unknown field: the failure is recorded under the version the event names.
    props = pipeline.container.upload_blob("troll/x.sgy", b"garbage").get_blob_properties()
    event = like_azure(pipeline.blobs.url, pipeline.container.container_name, "troll/x.sgy",
                       str(props.etag), props.size)  # fmt: skip
    deliver_event(to_cloud_event(event))
    (record,) = pipeline.failures()
    bare = event["data"]["eTag"]
    assert record["etag"] == bare
    row = Ledger.from_settings(get_settings()).get("troll", "troll/x.sgy", str(props.etag))
    assert row is not None and row["etag"] == bare and row["state"] == "failed"


def _merged(share: Path) -> Stream:
    st = Stream()
    for path in sorted((share / "mseed").rglob("*.mseed")):
        st += read(str(path))
    st.sort()
    assert st.get_gaps() == [], st.get_gaps()[:3]  # no permanent gap at any file boundary
    st.merge(method=-1)
    return st


def test_redrive_after_event_keeps_the_seams(pipeline, tmp_path: Path) -> None:
    """The bug: decimate from Event Grid (bare ETag) claimed the seam halves, redrive (SDK's
    quoted ETag) was refused them and its MiniSEED replaced the first without its seam halves:
    a permanent gap at both boundaries of the re-driven file."""
    from shared_code.pipeline import redrive_blob

    record = array_record(n_stations=2, seconds=SECONDS, rate_hz=RATE, n_events=3, seed=5)
    files = split_record(tmp_path, record, RATE, N_FILES, sample_format="float32")
    names = [f"grane/2026/11/23/{p.name}" for p in files]
    for name, path in zip(names, files, strict=True):
        props = pipeline.container.upload_blob(name, path.read_bytes()).get_blob_properties()
        deliver_event(like_azure(pipeline.blobs.url, pipeline.container.container_name, name,
                                 str(props.etag), props.size))  # fmt: skip
    assert pipeline.drain().processed == N_FILES

    middle = names[1]  # both of its boundaries are seams
    report = redrive_blob(get_settings(), middle)
    assert report is not None
    assert pipeline.drain().processed == 1
    assert not pipeline.failures()

    # The seam claims name the version as the event did (bare), never the SDK's quotes.
    owners = {p.read_text(encoding="utf-8") for p in (pipeline.share / "state").rglob("*.claim")}
    assert owners and all('"' not in o for o in owners), owners
    sdk = str(pipeline.container.get_blob_client(middle).get_blob_properties().etag)
    assert f"{middle}@{canonical_etag(sdk)}" in owners
    row = Ledger.from_settings(get_settings()).get("grane", middle, sdk)
    assert row is not None and row["state"] == "converted" and row["etag"] == canonical_etag(sdk)

    fields = load_fields(Path(pipeline.env["FIELDS_CONFIG"]))
    swept = sweep(pipeline.share, fields, 30, time.time() + 3600)
    assert sorted(s.half for s in swept) == ["left", "right"]  # only the record's two ends
    st = _merged(pipeline.share)
    cfg = fields.get("grane")
    plan = design(RATE, TARGET)
    whole = decimate(record.astype(np.float32), T0_NS, plan, "extend").data
    valid = output_span(plan, T0_NS, record.shape[1], "valid")
    first = output_span(plan, T0_NS, record.shape[1], "extend").first_index
    inside = np.arange(valid.n_samples) + valid.first_index - first
    for i in range(record.shape[0]):
        (tr,) = st.select(id=cfg.seed_id(TraceMeta(index=i), TARGET))
        assert tr.stats.npts == whole.shape[1]
        # Joined files equal the unbroken record's decimation to float32 rounding.
        bound = difference_bound(plan, float(np.abs(record[i]).max()))
        np.testing.assert_allclose(tr.data[inside], whole[i, inside], rtol=0, atol=bound)


def test_claims_written_with_the_sdk_spelling_still_belong_to_their_version(pipeline) -> None:
    # A claim file from before ETags were canonical holds the SDK's quoted ETag; the same
    # version, named bare by its event, still owns it, and another version still does not.
    from shared_code.seams import SeamStore

    client = pipeline.container.upload_blob("grane/a@b.sgy", b"one")
    sdk = str(client.get_blob_properties().etag)
    store = SeamStore(pipeline.share, "grane", "abc")
    assert store.claim(7, "left", f"grane/a@b.sgy@{sdk}")  # as a redrive wrote it before
    assert store.claim(7, "left", f"grane/a@b.sgy@{canonical_etag(sdk)}")
    newer = str(client.upload_blob(b"two", overwrite=True)["etag"])
    assert canonical_etag(newer) != canonical_etag(sdk)
    assert not store.claim(7, "left", f"grane/a@b.sgy@{canonical_etag(newer)}")
    assert not store.claim(7, "left", "grane/a@b.sgy")  # no ETag: not that version either
