"""The MiniSEED file's day folder is the raw data's first day, fixed before any sample is read.

Input we did not make: ObsPy's shipped ``gaps.mseed`` (BW.BGLD..EHE, 200 Hz), whose first
sample is at 2007-12-31T23:59:59.915Z, 85 ms before a new day and a new year: the hardest
case for a path that must not move between runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import obspy
from obspy import UTCDateTime

from shared_code import formats
from shared_code.fields import load_fields
from shared_code.messages import ConvertRequest, SourceBlob
from shared_code.share_layout import day_folder, ensure_layout, resolve
from shared_code.stages import convert_file, decimate_file

ROOT = Path(__file__).resolve().parent.parent
GAPS = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data" / "gaps.mseed"
BLOB = "grane/2008/01/01/gaps.mseed"


def _source() -> SourceBlob:
    return SourceBlob(url=f"file:///{BLOB}", container="raw", name=BLOB, etag='"0x1"',
                      event_id="e1", event_time="2026-11-29T10:00:00Z")  # fmt: skip


def test_the_day_is_the_raw_files_first_sample_and_the_same_on_every_run(tmp_path: Path) -> None:
    cfg = load_fields(ROOT / "config" / "fields.toml").get("grane")
    share = tmp_path / "share"
    ensure_layout(share)
    request, _ = decimate_file(GAPS, BLOB, share, cfg, _source())
    first = min(tr.stats.starttime for tr in obspy.read(str(GAPS)))
    assert first == UTCDateTime("2007-12-31T23:59:59.915")
    assert request.data_start_ns == first.ns  # from the raw headers, not the upload's time
    # It travels in the queue message.
    assert ConvertRequest.from_json(request.to_json()).data_start_ns == first.ns
    report = convert_file(request, share, cfg)
    assert report.output_path == "mseed/grane/2007/365/2008~~01~~01~~gaps.mseed.mseed"
    assert len(obspy.read(str(resolve(share, report.output_path)))) == 4  # 4 segments
    again, _ = decimate_file(GAPS, BLOB, share, cfg, _source())
    assert convert_file(again, share, cfg).output_path == report.output_path
    assert sorted(p.name for p in (share / "mseed" / "grane").rglob("*.mseed")) == [
        "2008~~01~~01~~gaps.mseed.mseed"
    ]


def test_a_message_queued_before_the_field_existed_uses_the_decimated_files_start(
    tmp_path: Path,
) -> None:
    cfg = load_fields(ROOT / "config" / "fields.toml").get("grane")
    share = tmp_path / "share"
    ensure_layout(share)
    request, _ = decimate_file(GAPS, BLOB, share, cfg, _source())
    old = ConvertRequest.from_json(replace(request, data_start_ns=None).to_json())
    assert old.data_start_ns is None
    with formats.open_source(resolve(share, request.decimated_path)) as src:
        start = min(b.starttime_ns for b in src.blocks)
    report = convert_file(old, share, cfg)
    assert report.output_path == f"mseed/grane/{day_folder(start)}/2008~~01~~01~~gaps.mseed.mseed"
