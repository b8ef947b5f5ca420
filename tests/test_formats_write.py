"""Round trips through the writers, the per-recording choice of output format, miniSEED."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.waveforms import NS_PER_S, Block, Recording
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
    path = tmp_path / f"out.{formats.EXTENSIONS[fmt]}"
    buffer = io.BytesIO()
    formats.write(recording, buffer, fmt)  # an open file, like the atomic staging file
    path.write_bytes(buffer.getvalue())
    return formats.read(path, "decimated")


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
