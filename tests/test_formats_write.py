"""Round trips through the writers, the per-recording choice of output format, miniSEED."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import obspy_bridge
from shared_code.share_layout import atomic_writer, resolve
from shared_code.waveforms import NS_PER_S, Block, Recording, TraceMeta
from tests import formats_helpers as fh


def decimated(recording: Recording, factor: int, offset: int = 1) -> Recording:
    """Stand-in for the DSP: every ``factor``-th sample from ``offset``, rate / factor."""
    blocks = [
        Block(
            np.ascontiguousarray(b.data[:, offset::factor]),
            b.sampling_rate / factor,
            b.starttime_ns + round(offset * NS_PER_S / b.rate),
            b.traces,
        )
        for b in recording.blocks
    ]
    return Recording(recording.format, blocks, recording.source, recording.file_headers)


def write_and_read(recording: Recording, tmp_path: Path, fmt: str) -> Recording:
    """Written as the pipeline writes: into the share's atomic writer (an open file)."""
    relative = f"decimated/f/out.{formats.EXTENSIONS[fmt]}"
    with atomic_writer(tmp_path / "share", relative) as (_tmp, out):
        formats.write(recording, out, fmt)
    return formats.read(resolve(tmp_path / "share", relative), "decimated")


def assert_same(a: Recording, b: Recording, dtype: type) -> None:
    assert len(a.blocks) == len(b.blocks)
    for x, y in zip(a.blocks, b.blocks, strict=True):
        assert y.data.dtype == dtype
        np.testing.assert_array_equal(y.data, x.data.astype(dtype))
        assert y.rate == x.rate
        assert y.starttime_ns == x.starttime_ns
        ids = [(t.network, t.station, t.location, t.channel) for t in x.traces]
        assert [(t.network, t.station, t.location, t.channel) for t in y.traces] == ids


@pytest.mark.parametrize(
    ("dtype", "written"),
    [("int16", np.int32), ("int32", np.int32), ("ibm", np.float32), ("float32", np.float32)],
)
def test_segy_round_trip_keeps_headers(tmp_path: Path, dtype: str, written: type) -> None:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 6, 400, 1000.0, dtype, endian="little")
    small = decimated(formats.read(src), 4)
    assert formats.output_format(small) == "SEGY"
    back = write_and_read(small, tmp_path, "SEGY")
    assert back.format == "SEGY"
    assert_same(small, back, written)
    assert back.blocks[0].starttime_ns == fh.SEGY_START_NS + 1_000_000
    trace = back.blocks[0].traces[3]
    assert trace.headers["GroupX"] == 1030
    assert trace.headers["TRACE_SAMPLE_COUNT"] == 100
    assert trace.headers["TRACE_SAMPLE_INTERVAL"] == 4000
    assert back.file_headers["endian"] == "little"
    assert back.file_headers["textual"] == small.file_headers["textual"]
    assert back.file_headers["binary"]["Format"] == (2 if written is np.int32 else 5)


def test_su_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in.su"
    fh.make_su(src, 4, 400, 1000.0, endian="big")
    small = decimated(formats.read(src), 4, offset=3)
    assert formats.output_format(small) == "SU"
    back = write_and_read(small, tmp_path, "SU")
    assert back.format == "SU"
    assert back.file_headers["endian"] == "big"
    assert_same(small, back, np.float32)


def test_mseed_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in"
    stream = fh.obspy_stream(["XX.A.00.HHZ", "XX.B.00.HHZ"], 1000, 1000.0)
    stream.write(str(src), format="MSEED")
    small = decimated(formats.read(src), 4)
    assert formats.output_format(small) == "MSEED"
    assert_same(small, write_and_read(small, tmp_path, "MSEED"), np.int32)


def test_sac_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(["XX.A.00.HHZ"], 1000, 1000.0, "float32").write(str(src), format="SAC")
    small = decimated(formats.read(src), 4)
    assert formats.output_format(small) == "SAC"
    assert_same(small, write_and_read(small, tmp_path, "SAC"), np.float32)


def test_gse2_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(["XX.A..HHZ", "XX.B..HHZ"], 1000, 1000.0).write(str(src), format="GSE2")
    small = decimated(formats.read(src), 4)
    assert formats.output_format(small) == "GSE2"
    assert_same(small, write_and_read(small, tmp_path, "GSE2"), np.int32)


def test_write_to_a_path(tmp_path: Path) -> None:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 2, 100, 1000.0)
    recording = formats.read(src)
    formats.write(recording, tmp_path / "out.segy", "SEGY")
    assert_same(recording, formats.read(tmp_path / "out.segy"), np.int32)


# --- recordings whose own format cannot carry them go to miniSEED ----------------------------


def _fallback(recording: Recording, tmp_path: Path, dtype: type) -> Recording:
    assert formats.output_format(recording) == "MSEED"
    back = write_and_read(recording, tmp_path, "MSEED")
    assert_same(recording, back, dtype)
    got = [t.index for b in back.blocks for t in b.traces]
    assert got == [t.index for b in recording.blocks for t in b.traces]
    return back


def test_segy_below_30_hz_goes_to_mseed(tmp_path: Path) -> None:
    # 25 Hz is a 40000 µs interval: more than SEG-Y's int16 sample interval holds.
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 3, 400, 1000.0, "int32")
    recording = formats.read(src)
    recording.blocks[0].traces = recording.blocks[0].traces[::-1]  # selection keeps indices
    _fallback(decimated(recording, 40), tmp_path, np.int32)


def test_segy_with_a_non_integer_us_interval_goes_to_mseed(tmp_path: Path) -> None:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 2, 300, 1000.0, "float32")
    small = decimated(formats.read(src), 3)
    small.blocks[0].sampling_rate = 3000 / 7  # rational resampling: 2333.33 µs
    small.blocks[0].starttime_ns = fh.SEGY_START_NS
    _fallback(small, tmp_path, np.float32)


def test_segy_with_a_start_time_the_header_cannot_hold_goes_to_mseed(tmp_path: Path) -> None:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 2, 300, 1000.0, "int16")
    small = decimated(formats.read(src), 2)
    small.blocks[0].starttime_ns = fh.START_NS  # .123456 s: no int16 delay reaches it at 1 µs
    _fallback(small, tmp_path, np.int32)


def test_seg2_goes_to_mseed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.make_seg2(src, 3, 400, 1000.0, "int32")
    _fallback(decimated(formats.read(src), 4), tmp_path, np.int32)


def test_sac_with_integer_samples_goes_to_mseed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(["XX.A.00.HHZ"], 400, 1000.0, "float32").write(str(src), format="SAC")
    small = decimated(formats.read(src), 4)
    small.blocks[0].data = small.blocks[0].data.astype(np.int32)
    _fallback(small, tmp_path, np.int32)


def test_gse2_with_a_location_code_goes_to_mseed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(["XX.A..HHZ"], 400, 1000.0).write(str(src), format="GSE2")
    small = decimated(formats.read(src), 4)
    small.blocks[0].traces[0].location = "00"  # GSE2 has no location code
    _fallback(small, tmp_path, np.int32)


def test_other_obspy_formats_go_to_mseed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(["XX.A.00.HHZ"], 400, 1000.0).write(str(src), format="TSPAIR")
    recording = formats.read(src)
    assert recording.format == "TSPAIR"
    _fallback(decimated(recording, 4), tmp_path, np.int32)


# --- miniSEED encodings ------------------------------------------------------------------


def test_steim2_overflow_falls_back_to_int32_for_that_trace(tmp_path: Path) -> None:
    from obspy import read

    wild = np.tile(np.array([2**30, -(2**30)], dtype=np.int32), 500)
    calm = np.arange(1000, dtype=np.int32)
    start = fh.START_NS
    block = Block(
        np.stack([wild, calm]), 250.0, start, fh.obspy_metas(["XX.A.00.HHZ", "XX.B.00.HHZ"])
    )
    recording = Recording("MSEED", [block], "wild")
    path = tmp_path / "w.mseed"
    formats.write(recording, path, "MSEED")
    assert path.stat().st_size % 512 == 0
    encodings = {tr.stats.station: tr.stats.mseed.encoding for tr in read(str(path), details=True)}
    assert encodings == {"A": "INT32", "B": "STEIM2"}
    assert_same(recording, formats.read(path), np.int32)


def test_float64_is_written_as_float32(tmp_path: Path) -> None:
    from obspy import read

    data = np.linspace(-1, 1, 600).reshape(1, -1)
    recording = Recording(
        "SEG2", [Block(data, 500.0, fh.START_NS, fh.obspy_metas(["XX.A.00.HHZ"]))]
    )
    path = tmp_path / "f.mseed"
    formats.write(recording, path, formats.output_format(recording))
    assert read(str(path), details=True)[0].stats.mseed.encoding == "FLOAT32"
    assert_same(recording, formats.read(path), np.float32)


# --- miniSEED: pymseed's records against ObsPy's writer ----------------------------------


def _obspy_records(recording: Recording) -> bytes:
    """What the writer wrote before pymseed: ObsPy's ``Stream.write``, one trace per row."""
    import warnings

    from obspy import Stream, Trace, UTCDateTime
    from obspy.core import AttribDict

    out = io.BytesIO()
    for block in recording.blocks:
        for meta, row in zip(block.traces, block.data, strict=True):
            tr = Trace(row.astype(np.float32 if row.dtype.kind == "f" else np.int32))
            tr.stats.sampling_rate = block.sampling_rate
            tr.stats.starttime = UTCDateTime(ns=block.starttime_ns)
            codeless = not (meta.network or meta.station or meta.location or meta.channel)
            tr.stats.network, tr.stats.location, tr.stats.channel = (
                meta.network, meta.location, meta.channel
            )  # fmt: skip
            tr.stats.station = str(meta.index) if codeless else meta.station
            tr.stats.mseed = AttribDict(encoding=formats.mseed.encoding_for(tr.data))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Stream([tr]).write(out, format="MSEED", reclen=512)
    return out.getvalue()


def _blockette(record: bytes, kind: int) -> bytes | None:
    at = int.from_bytes(record[46:48], "big")
    while at:
        if int.from_bytes(record[at : at + 2], "big") == kind:
            return record[at + 4 : at + 8]
        at = int.from_bytes(record[at + 2 : at + 4], "big")
    return None


def _stream_summary(data: bytes) -> list[tuple]:
    from obspy import read

    st = read(io.BytesIO(data), format="MSEED", details=True)
    return [
        (tr.id, tr.stats.starttime.ns, tr.stats.sampling_rate, tr.stats.mseed.encoding,
         tr.data.dtype.str, tr.data.tobytes())
        for tr in st
    ]  # fmt: skip


@pytest.mark.parametrize("rate", [100.0, 300.0, 1000 / 3, 2.5, 0.1, 200 / 3])
@pytest.mark.parametrize(
    "start_ns",
    [
        fh.START_NS,
        fh.START_NS + 123_456_000,  # µs part: blockette 1001
        fh.START_NS + 123_456_789,  # sub-µs: rounded to the µs, as ObsPy
        fh.START_NS + 999_999_500,  # a tie, rounded up into the next second
        -1_000_000_000_500,  # before 1970, a tie: ObsPy rounds towards later
    ],
)
def test_mseed_records_match_obspys_writer(rate: float, start_ns: int) -> None:
    rng = np.random.default_rng(7)
    ints = np.cumsum(rng.integers(-3000, 3000, (4, 2500)), axis=1).astype(np.int32)
    ints[1, 100] = 2**30  # Steim-2 overflow: that trace INT32, the others Steim-2
    ints[2, 50:60] = -(2**29)  # a difference of exactly ±2**29 does not fit Steim-2 either
    floats = rng.standard_normal((2, 1800)).astype(np.float32)
    # Bit-exact specials (NaN and Inf become gaps: tests/test_mseed_nonfinite.py).
    floats[0, :3] = [np.float32(1e-45), -0.0, np.finfo(np.float32).max]
    ids = ["XX.A.00.HHZ", "XX.B..HH", "xx.a b.--.z", "...", ".STA.."]
    metas = fh.obspy_metas(ids[:4])
    codeless = [TraceMeta(index=17), TraceMeta(index=99_999)]
    recording = Recording(
        "MSEED",
        [Block(ints, rate, start_ns, metas), Block(floats, rate, start_ns + 10**9, codeless)],
        "cmp",
    )
    ours = io.BytesIO()
    formats.write(recording, ours, "MSEED")
    mine, theirs = ours.getvalue(), _obspy_records(recording)
    # What ObsPy reads: the same samples (bytes), SEED ids, µs start times, rates, encodings.
    assert _stream_summary(mine) == _stream_summary(theirs)
    encodings = [s[3] for s in _stream_summary(mine)]
    assert encodings == ["STEIM2", "INT32", "INT32", "STEIM2", "FLOAT32", "FLOAT32"]
    # Record by record: libmseed 3 starts a record's Steim-2 differences from 0 where libmseed
    # 2 takes the previous record's last sample, so where records split may differ; the header
    # words ObsPy wrote per trace are the same, each record's time within the µs.
    ours_traces, their_traces = _records_by_trace(mine), _records_by_trace(theirs)
    assert [t[0][8:20] for t in ours_traces] == [t[0][8:20] for t in their_traces]
    for records, others, block_start in zip(
        ours_traces, their_traces, [start_ns] * 4 + [start_ns + 10**9] * 2, strict=True
    ):
        first, other = records[0], others[0]
        # all but the sample count: quality, codes, time, rate, flags, blockettes, offsets
        assert first[6:30] == other[6:30] and first[32:48] == other[32:48]
        assert _blockette(first, 1000) == _blockette(other, 1000)
        assert _blockette(first, 1001) == _blockette(other, 1001)  # µs offset
        assert [r[:6] for r in records] == [b"%06d" % (k + 1) for k in range(len(records))]
        done = 0
        for record in records:
            expected = obspy_bridge.round_us(block_start) + done * 10**9 / rate
            assert abs(_record_start_ns(record) - expected) <= 1000
            done += int.from_bytes(record[30:32], "big")


def _records_by_trace(data: bytes) -> list[list[bytes]]:
    """A file's 512-byte records, grouped by trace (a sequence number 1 starts a trace)."""
    traces: list[list[bytes]] = []
    for at in range(0, len(data), 512):
        record = data[at : at + 512]
        if record[:6] == b"000001":
            traces.append([])
        traces[-1].append(record)
    return traces


def _record_start_ns(record: bytes) -> int:
    from obspy import read

    return int(read(io.BytesIO(record), format="MSEED")[0].stats.starttime.ns)


def test_mseed_writer_refuses_non_ascii_codes() -> None:
    block = Block(np.zeros((1, 10), np.int32), 100.0, fh.START_NS, fh.obspy_metas(["XX.Ä.00.HHZ"]))
    with pytest.raises(formats.FormatError, match="not ASCII"):
        formats.write(Recording("MSEED", [block], "x"), io.BytesIO(), "MSEED")


@pytest.mark.parametrize("n_samples", [1, 111, 112, 113, 1800, 2240])
def test_mseed_float_records_from_a_template_are_libmseeds(
    n_samples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FLOAT32 rows after the first get the first row's record headers with their own samples:
    byte for byte what libmseed packs row by row, in batches of any size."""
    rng = np.random.default_rng(11)
    rows = rng.standard_normal((9, n_samples)).astype(np.float32) * 1e3
    rows[1, :1] = -np.finfo(np.float32).max  # (NaN and Inf: tests/test_mseed_nonfinite.py)
    rows[2, -1:] = np.finfo(np.float32).tiny
    rows[3, :1] = np.float32(1e-40)  # subnormal
    block = Block(
        rows, 250.0, fh.START_NS + 123_456_789, fh.obspy_metas([f"XX.S{i}..HHZ" for i in range(9)])
    )
    recording = Recording("MSEED", [block], "f")

    def written() -> bytes:
        out = io.BytesIO()
        formats.write(recording, out, "MSEED")
        return out.getvalue()

    fast = written()
    monkeypatch.setattr(formats.mseed, "WRITE_BYTES", 3 * 4 * n_samples)  # batches of 3 rows
    assert written() == fast
    monkeypatch.setattr(formats.mseed, "_float_records_like", lambda *_: None)  # libmseed only
    assert written() == fast
    monkeypatch.setattr(formats.mseed, "WRITE_BYTES", 1)
    assert written() == fast
    assert _stream_summary(fast) == _stream_summary(_obspy_records(recording))
