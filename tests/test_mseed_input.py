"""MiniSEED inputs ObsPy reads that a first-record check refuses: full SEED volumes, noise
records, records without data. ObsPy's own test files, detected, read and run through the
real decimate and convert stages on a share directory."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import obspy
import pytest

from shared_code import formats
from shared_code.dsp import design, output_span
from shared_code.fields import parse_fields
from shared_code.formats import FormatError, mseed
from shared_code.messages import SourceBlob
from shared_code.seams import edge_length
from shared_code.stages import convert_file, decimate_file

OBSPY_IO = Path(obspy.__file__).parent / "io"
MSEED_DATA = OBSPY_IO / "mseed" / "tests" / "data"
XSEED_DATA = OBSPY_IO / "xseed" / "tests" / "data"

#: Full SEED volumes (control headers, then data records) and files with noise records.
VOLUMES_AND_NOISE = [
    MSEED_DATA / "fullseed.mseed",
    MSEED_DATA / "fullseed_dataquality_M.mseed",
    MSEED_DATA / "fullseed_dataquality_Q.mseed",
    MSEED_DATA / "fullseed_dataquality_R.mseed",
    MSEED_DATA / "RJOB.BW.EHZ.D.300806.0000.fullseed",
    MSEED_DATA / "blockette008.mseed",
    XSEED_DATA / "arclink_full.seed",
    MSEED_DATA / "various_noise_records.mseed",
    MSEED_DATA / "single_record_plus_noise_record.mseed",
]

FIELDS = parse_fields(
    """
[fields.test]
network = "XT"
target_rate_hz = 10.0
location = "00"
station_source = "header"
station_prefix = "T"
station_first = 1
stations = ["APE", "RJOB", "PART", "FUR", "NV30", "NV31", "NV32", "NV33", "PANIX", "INT", "FLT"]
components = ["Z", "N", "E"]
sensors = { Z = "broadband", N = "broadband", E = "broadband" }
"""
)


def _obspy_read(path: Path) -> obspy.Stream:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return obspy.read(str(path), format="MSEED")


def _run(path: Path, share: Path, target_hz: float) -> tuple[Path, int]:
    """decimate_file then convert_file (the CLI's ``process``); the MiniSEED and its traces."""
    cfg = FIELDS.get("test")
    blob = f"test/{path.name}"
    source = SourceBlob(
        url=path.as_uri(), container="raw", name=blob, etag='"1"', event_id="e",
        event_time="2024-01-01T00:00:00+00:00",
    )  # fmt: skip
    request, decimated = decimate_file(path, blob, share, cfg, source, target_rate_hz=target_hz)
    converted = convert_file(request, share, cfg)
    assert decimated.input_format == "MSEED"
    return share / converted.output_path, converted.traces


def test_detection_agrees_with_obspy_on_all_its_test_data() -> None:
    """ObsPy's ``_is_mseed`` over every file of its test data (any format): the same answer."""
    from obspy.io.mseed.core import _is_mseed

    files = [p for p in OBSPY_IO.glob("*/tests/data/**/*") if p.is_file() and p.stat().st_size]
    assert len(files) > 500
    differ = [p for p in files if mseed.is_mseed(p) != bool(_is_mseed(str(p)))]
    assert differ == []
    assert all(mseed.is_mseed(p) for p in VOLUMES_AND_NOISE)


@pytest.mark.parametrize("path", VOLUMES_AND_NOISE, ids=lambda p: p.name)
def test_volumes_and_noise_are_read_as_obspy_reads_them(path: Path, share: Path) -> None:
    assert formats.detect(path) == "MSEED"
    expected = _obspy_read(path)
    recording = formats.read(path, path.name)
    got = {
        (t.network, t.station, t.location, t.channel, b.starttime_ns): row
        for b in recording.blocks
        for t, row in zip(b.traces, b.data, strict=True)
    }
    assert len(got) == len(expected)
    for tr in expected:
        s = tr.stats
        row = got[(s.network, s.station, s.location, s.channel, tr.stats.starttime.ns)]
        np.testing.assert_array_equal(row, tr.data)

    # Through the real stages: every input trace comes out at the target rate, on the span
    # the decimation plan gives (no neighbouring file: the interior, or the whole block
    # with extended edges when it is shorter than two seam edges).
    target = min(tr.stats.sampling_rate for tr in expected) / 2
    out, n_traces = _run(path, share, target)
    stream = _obspy_read(out)
    assert n_traces == len(expected) == len(stream)
    # The field keeps the station and the component (the channel's last letter).
    by_station = {(tr.stats.station, tr.stats.channel[-1]): tr for tr in stream}
    for tr in expected:
        plan = design(tr.stats.sampling_rate, target)
        short = tr.stats.npts < 2 * edge_length(plan) + 1
        span = output_span(
            plan, tr.stats.starttime.ns, tr.stats.npts, "extend" if short else "valid"
        )
        got_tr = by_station[tr.stats.station, tr.stats.channel[-1]]
        assert got_tr.stats.sampling_rate == target
        assert got_tr.stats.starttime.ns == span.starttime_ns
        assert got_tr.stats.npts == span.n_samples


def test_records_without_data_are_skipped(share: Path) -> None:
    """Data offset 0 (a record holding no samples between two data records): ObsPy gives an
    empty trace; it is left out of the read, and both waveform traces are converted."""
    path = MSEED_DATA / "bizarre" / "mseed_data_offset_0.mseed"
    stream = _obspy_read(path)
    assert sorted(len(tr.data) for tr in stream) == [0, 252, 262]
    recording = formats.read(path, path.name)
    assert sorted(b.n_samples for b in recording.blocks) == [252, 262]
    out, _ = _run(path, share, 0.5)
    samples = sum(len(tr.data) for tr in _obspy_read(out))
    # 514 input samples at 1 Hz -> 0.5 Hz: about half, whatever the seams' edges add.
    assert 250 <= samples <= 262


@pytest.mark.parametrize(
    "name, reason",
    [
        ("encoding/fullASCII_bigEndian.mseed", "1 text (ASCII log) and 0 empty traces only"),
        ("rt130_sr0_cropped.mseed", "5 text (ASCII log) and 0 empty traces only"),
    ],
)
def test_text_only_files_are_refused_clearly(name: str, reason: str) -> None:
    path = MSEED_DATA / name
    assert formats.detect(path) == "MSEED"
    with pytest.raises(FormatError, match="no waveform data") as err:
        formats.read(path, f"raw/{path.name}")
    assert str(err.value) == f"raw/{path.name}: no waveform data: {reason}"


def test_noise_alone_and_a_lone_volume_header_are_not_miniseed(tmp_path: Path) -> None:
    noise = tmp_path / "noise"
    noise.write_bytes((b"000001" + b" " * 122) * 8)
    volume = tmp_path / "volume"
    head = (MSEED_DATA / "fullseed.mseed").read_bytes()[:4096]
    volume.write_bytes(head * 3)  # control headers only, no data record
    text = tmp_path / "text"
    text.write_bytes(b"000001D " + b"not a record " * 100)
    for path in (noise, volume, text):
        assert not mseed.is_mseed(path)
        with pytest.raises(FormatError, match="not seismic data"):
            formats.detect(path)


# --- miniSEED 3, read through pymseed ---------------------------------------------------------


def _twins(tmp_path: Path, start_ns: int) -> tuple[Path, Path]:
    """The same traces (real counts from ObsPy's test data, and a float32 copy) as miniSEED 2
    written by ObsPy and as miniSEED 3 written by libmseed 3 (pymseed)."""
    from pymseed import DataEncoding, MS3TraceList

    counts = _obspy_read(MSEED_DATA / "gaps.mseed")[-1].data.astype(np.int32)
    floats = (counts / 7).astype(np.float32)
    stream = obspy.Stream()
    ms3 = b""
    for station, data, encoding in (
        ("INT", counts, DataEncoding.STEIM2),
        ("FLT", floats, DataEncoding.FLOAT32),
    ):
        tr = obspy.Trace(data)
        tr.stats.update({"network": "XX", "station": station, "location": "00", "channel": "HHZ"})
        tr.stats.sampling_rate, tr.stats.starttime = 200.0, obspy.UTCDateTime(ns=start_ns)
        stream.append(tr)
        one = MS3TraceList()
        one.add_data(
            f"FDSN:XX_{station}_00_H_H_Z", data, data.dtype.kind, 200.0, starttime=start_ns
        )
        part = tmp_path / f"{station}.ms3"
        one.to_file(part, max_record_length=512, encoding=encoding)
        ms3 += part.read_bytes()
    ms2_path, ms3_path = tmp_path / "twin.ms2", tmp_path / "twin.ms3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ObsPy: "more than one different encodings"
        stream.write(str(ms2_path), format="MSEED", reclen=512)
    ms3_path.write_bytes(ms3)
    return ms2_path, ms3_path


def _by_id(recording: formats.Recording) -> dict[str, tuple[int, float, np.ndarray]]:
    return {
        f"{t.network}.{t.station}.{t.location}.{t.channel}": (b.starttime_ns, b.sampling_rate, row)
        for b in recording.blocks
        for t, row in zip(b.traces, b.data, strict=True)
    }


def test_miniseed3_reads_as_its_miniseed2_twin(tmp_path: Path, share: Path) -> None:
    start = 1_199_145_618_455_000_000  # µs-exact: miniSEED 2 carries it too
    ms2, ms3 = _twins(tmp_path, start)
    assert formats.detect(ms3) == "MSEED"
    from_ms2, from_ms3 = _by_id(formats.read(ms2)), _by_id(formats.read(ms3))
    assert from_ms3.keys() == from_ms2.keys() == {"XX.INT.00.HHZ", "XX.FLT.00.HHZ"}
    for sid, (t0, rate, row) in from_ms2.items():
        t3, rate3, row3 = from_ms3[sid]
        assert (t3, rate3, row3.dtype) == (t0, rate, row.dtype)
        np.testing.assert_array_equal(row3, row)

    # Through the real stages, both give the same MiniSEED samples, times and ids.
    (share / "a").mkdir()
    (share / "b").mkdir()
    out2, _ = _run(ms2, share / "a", 50.0)
    out3, _ = _run(ms3, share / "b", 50.0)
    # (libmseed 3 lists traces by source id: compare in that order)
    st2, st3 = (sorted(_obspy_read(p), key=lambda t: t.id) for p in (out2, out3))
    assert [(t.id, t.stats.starttime, t.stats.npts) for t in st3] == [
        (t.id, t.stats.starttime, t.stats.npts) for t in st2
    ]
    for a, b in zip(st2, st3, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_miniseed3_keeps_nanoseconds_and_checks_crcs(tmp_path: Path) -> None:
    start = 1_199_145_618_455_000_123
    _, ms3 = _twins(tmp_path, start)
    assert {b.starttime_ns for b in formats.read(ms3).blocks} == {start}
    raw = bytearray(ms3.read_bytes())
    raw[600] ^= 0x01  # a bit in the first record's data
    ms3.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"raw/x\.ms3: unreadable miniSEED 3 file: .*CRC"):
        formats.read(ms3, "raw/x.ms3")


def test_a_0_hz_channel_beside_waveforms_is_left_out(tmp_path: Path) -> None:
    """A state-of-health channel with no time base (0 Hz, numeric samples) beside a 100 Hz
    channel: ObsPy reads both; the waveform is read, the 0 Hz channel left out (logged)."""
    wave = obspy.Trace(np.arange(500, dtype=np.int32))
    wave.stats.update({"network": "XX", "station": "WAVE", "channel": "HHZ"})
    wave.stats.sampling_rate = 100.0
    soh = obspy.Trace(np.arange(10, dtype=np.int32))
    soh.stats.update({"network": "XX", "station": "WAVE", "channel": "LOG"})
    soh.stats.sampling_rate = 0.0
    path = tmp_path / "mixed.mseed"
    obspy.Stream([wave, soh]).write(str(path), format="MSEED", reclen=512)
    assert {tr.stats.sampling_rate for tr in obspy.read(str(path))} == {0.0, 100.0}
    recording = formats.read(path, "test/mixed.mseed")
    assert [(b.sampling_rate, [t.channel for t in b.traces]) for b in recording.blocks] == [
        (100.0, ["HHZ"])
    ]
    np.testing.assert_array_equal(recording.blocks[0].data[0], wave.data)
