"""Real-world uploads end to end on a real Azurite: blob names with spaces, '#' and non-ASCII
letters, and compressed files; BlobCreated as Azure sends it → decimate → queue → convert."""

from __future__ import annotations

import bz2
import gzip
import logging
import re
from pathlib import Path

import pytest
from obspy import read

from scripts.local_host import deliver_event
from scripts.sample_data import array_record, write_segy
from shared_code.events import to_cloud_event
from shared_code.ledger import Ledger
from shared_code.settings import get_settings
from tests.share_helpers import mseed_file

NAMES = ["snorre/小文件.sgy", "snorre/Snorre line 4 #1.sgy"]


@pytest.fixture(scope="module")
def segy_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("names") / "a.sgy"
    return write_segy(path, array_record(n_stations=2, seconds=4.0), 1000.0).read_bytes()


@pytest.mark.parametrize("cloud", [False, True], ids=["eventgrid-schema", "cloudevents-schema"])
def test_names_with_spaces_and_non_ascii_letters_end_to_end(
    pipeline, segy_bytes: bytes, cloud: bool
) -> None:
    events = {}
    for name in NAMES:
        props = pipeline.upload(name, segy_bytes)
        event = pipeline.event(name, props["etag"], props["size"])
        # As Azure sends it: the subject holds the name as it is, data.url percent-encoded.
        assert event["subject"].endswith(f"/blobs/{name}")
        assert " " not in event["data"]["url"] and "#" not in event["data"]["url"]
        deliver_event(to_cloud_event(event) if cloud else event)
        events[name] = event
    drained = pipeline.drain()
    assert drained.processed == 2 and not drained.poisoned, drained.errors
    assert not pipeline.failures()

    mapped = {name: mseed_file(pipeline.share, name).relative_to(pipeline.share).as_posix()
              for name in NAMES}  # fmt: skip
    assert re.fullmatch(r"mseed/snorre/\d{4}/\d{3}/小文件\.sgy\.mseed", mapped["snorre/小文件.sgy"])
    assert re.fullmatch(
        r"mseed/snorre/\d{4}/\d{3}/Snorre line 4 #1\.sgy~[0-9a-f]{10}\.mseed", mapped[NAMES[1]]
    )
    found = sorted(p.relative_to(pipeline.share).as_posix()
                   for p in (pipeline.share / "mseed").rglob("*.mseed"))  # fmt: skip
    assert found == sorted(mapped.values())
    ledger = Ledger.from_settings(get_settings())
    for name in NAMES:
        st = read(str(pipeline.share / mapped[name]))
        assert len(st) == 8 and {tr.stats.sampling_rate for tr in st} == {250.0}
        # The day folder is the data's (year, day of year), not the upload's.
        first = min(tr.stats.starttime for tr in st)
        assert mapped[name].split("/")[2:4] == [f"{first.year:04d}", f"{first.julday:03d}"]
        row = ledger.get("snorre", name, events[name]["data"]["eTag"])
        assert row is not None and row["state"] == "converted"
        assert row["blob"] == name  # the original name, not the mapped path
        assert row["mseed_paths"] == [mapped[name]]


def test_failure_record_and_ledger_keep_the_original_name(pipeline) -> None:
    name = "snorre/Snorre line 5 #2 (ødelagt).sgy"
    event = pipeline.upload_and_deliver(name, b"not seismic data at all " * 40)
    (record,) = pipeline.failures()
    assert record["blob"] == name
    assert record["reason"].startswith(f"{name}: not seismic data")
    row = Ledger.from_settings(get_settings()).get("snorre", name, event["data"]["eTag"])
    assert row is not None and row["state"] == "failed" and row["blob"] == name
    assert row["failure_path"].startswith("failed/")


@pytest.mark.parametrize("kind", ["gzip", "bzip2"])
def test_compressed_upload_end_to_end(
    pipeline, segy_bytes: bytes, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A field gzips (or bzip2s) a SEG-Y for transfer and keeps the .sgy name."""
    name = "snorre/2026/11/23/packed.sgy"
    payload = gzip.compress(segy_bytes) if kind == "gzip" else bz2.compress(segy_bytes)
    with caplog.at_level(logging.INFO, logger="shared_code.pipeline"):
        event = pipeline.upload_and_deliver(name, payload)
    assert f"SEGY ({kind}-compressed) -> decimated/snorre/2026/11/23/packed.sgy" in caplog.text
    drained = pipeline.drain()
    assert drained.processed == 1 and not drained.poisoned, drained.errors
    st = read(str(mseed_file(pipeline.share, name)))
    assert len(st) == 8 and st[0].id == "XS.S0001.00.DPZ"
    assert not list(Path(pipeline.share / "staging").iterdir())  # both spools removed
    row = Ledger.from_settings(get_settings()).get("snorre", name, event["data"]["eTag"])
    assert row is not None and row["state"] == "converted"
    blob = pipeline.container.get_blob_client(name)
    assert blob.download_blob().readall() == payload  # raw blob untouched


def test_compressed_tar_of_several_files_is_recorded_as_a_failure(
    pipeline, segy_bytes: bytes
) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member in ("line 1.sgy", "line 2.sgy"):
            info = tarfile.TarInfo(member)
            info.size = len(segy_bytes)
            tar.addfile(info, io.BytesIO(segy_bytes))
    name = "snorre/batch.tar.gz"
    pipeline.upload_and_deliver(name, buf.getvalue())
    (record,) = pipeline.failures()
    assert record["blob"] == name and record["permanent"] is True
    assert record["reason"] == (
        f"{name}: a tar archive inside a gzip file with 2 files (first: line 1.sgy, "
        "line 2.sgy): upload one waveform file per blob"
    )
    assert not list((pipeline.share / "mseed").rglob("*.mseed"))
