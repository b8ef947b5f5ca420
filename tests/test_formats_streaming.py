"""The streaming format API: sources read like ``read()``, writers write like ``write()``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import segy, traceheader
from shared_code.waveforms import Block, Recording, TraceMeta
from tests import formats_helpers as fh
from tests.test_formats_write import decimated

ROOT = Path(__file__).resolve().parent.parent


def _obspy_file(path: Path, fmt: str, ids: list[str], dtype: str = "int32") -> None:
    fh.obspy_stream(ids, 300, 250.0, dtype).write(str(path), format=fmt)


BUILDERS: dict[str, Callable[[Path], object]] = {
    "SEGY": lambda p: fh.make_segy(p, 7, 300, 1000.0, "ibm", endian="little"),
    "SU": lambda p: fh.make_su(p, 7, 300, 1000.0, endian="big"),
    "SEG2": lambda p: fh.make_seg2(p, 5, 300, 1000.0),
    "MSEED": lambda p: _obspy_file(p, "MSEED", ["XX.A.00.HHZ", "XX.B.00.HHZ", "XX.C.00.HHZ"]),
    "SAC": lambda p: _obspy_file(p, "SAC", ["XX.A.00.HHZ"], "float32"),
    "GSE2": lambda p: _obspy_file(p, "GSE2", ["XX.A..HHZ", "XX.B..HHZ", "XX.C..HHZ"]),
    "TSPAIR": lambda p: _obspy_file(p, "TSPAIR", ["XX.A.00.HHZ"]),
}


def assert_source_is_recording(source: formats.Source, recording: Recording) -> None:
    """Same metadata as ``read()``, and every kind of slice equal to its data."""
    assert (source.format, source.source) == (recording.format, recording.source)
    assert source.file_headers == recording.file_headers
    assert len(source.blocks) == len(recording.blocks)
    for got, want in zip(source.blocks, recording.blocks, strict=True):
        assert got.traces == want.traces
        assert (got.sampling_rate, got.starttime_ns) == (want.sampling_rate, want.starttime_ns)
        assert (got.n_samples, got.dtype, got.is_integer) == (
            want.n_samples,
            want.data.dtype,
            want.is_integer,
        )
        n, ns = want.data.shape
        for start, stop in [(0, n), (1, n - 1), (n - 1, n), (2, 2)]:
            rows = got.rows(start, stop)
            assert rows.dtype == want.data.dtype
            np.testing.assert_array_equal(rows, want.data[start:stop])
        for start, stop in [(0, ns), (0, 17), (ns - 5, ns), (3, 4), (ns - 2, ns + 50)]:
            columns = got.columns(start, stop)
            assert columns.dtype == want.data.dtype
            np.testing.assert_array_equal(columns, want.data[:, start:stop])
        for start, stop in [(0, n), (1, n - 1), (n - 1, n)]:
            stored = got.stored_rows(start, stop)
            # Same values; the type may differ only in byte order.
            assert stored.dtype.newbyteorder("=") == want.data.dtype
            np.testing.assert_array_equal(stored, want.data[start:stop])
        for size in sorted({1, 17, ns // 2, ns - 1, ns}):
            head, tail = got.edges(size)
            np.testing.assert_array_equal(head, want.data[:, :size])
            np.testing.assert_array_equal(tail, want.data[:, ns - size :])


@pytest.mark.parametrize("fmt", BUILDERS)
def test_open_source_gives_what_read_gives(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "misnamed.png"
    BUILDERS[fmt](path)
    recording = formats.read(path, "raw/x/file")
    with formats.open_source(path, "raw/x/file") as source:
        assert_source_is_recording(source, recording)


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("dtype", ["int16", "int32", "ibm", "float32"])
@pytest.mark.parametrize("n_samples", [300, 6000])  # small records read whole; large by window
def test_segy_samples_are_segyio_s_bit_for_bit(
    tmp_path: Path, dtype: str, endian: str, n_samples: int
) -> None:
    path = tmp_path / "f.sgy"
    fh.make_segy(path, 9, n_samples, 1000.0, dtype, endian=endian)
    reference = fh.segyio_samples(path, endian)
    with formats.open_source(path) as source:
        [block] = source.blocks
        np.testing.assert_array_equal(block.rows(0, 9), reference)
        np.testing.assert_array_equal(block.rows(2, 7), reference[2:7])
        np.testing.assert_array_equal(block.columns(5, 9), reference[:, 5:9])
        np.testing.assert_array_equal(block.columns(0, n_samples), reference)
        assert_source_is_recording(source, formats.read(path))


@pytest.mark.parametrize("endian", ["big", "little"])
def test_ibm_float_conversion_streams_every_kind_of_word(tmp_path: Path, endian: str) -> None:
    # Random words cover every exponent: float32 normals, beyond float32, below it, zeros of
    # both signs, unnormalised fractions. The streaming reader decodes them as
    # segy.ibm_to_float32 (exact: tests/test_formats_segy_ibm.py), which is segyio's result
    # for normalised words in float32's normal range (segyio's table method is wrong for
    # unnormalised fractions and saturates out-of-range words to NaN or zero).
    path = tmp_path / "ibm.sgy"
    n_traces, n_samples = 4, 4096
    fh.make_segy(path, n_traces, n_samples, 1000.0, "ibm", endian=endian)
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**32, size=(n_traces, n_samples), dtype=np.uint64).astype(np.uint32)
    words[0, :4] = [0, 0x80000000, 0x41000000, 0x00000001]
    words[1] &= np.uint32(0x80FFFFFF)
    words[1] |= np.uint32(0x21000000)  # exponent 33: around the smallest converted magnitude
    order = ">" if endian == "big" else "<"
    raw = bytearray(path.read_bytes())
    record = 240 + 4 * n_samples
    for i in range(n_traces):
        at = segy.FILE_HEADER_BYTES + i * record + 240
        raw[at : at + 4 * n_samples] = words[i].astype(order + "u4").tobytes()
    path.write_bytes(bytes(raw))
    with formats.open_source(path) as source:
        got = source.blocks[0].rows(0, n_traces)
        np.testing.assert_array_equal(got[:, 100:200], source.blocks[0].columns(100, 200))
    np.testing.assert_array_equal(got.view(np.uint32), segy.ibm_to_float32(words).view(np.uint32))
    exponent = (words >> 24) & 0x7F
    plain = ((words & 0x00F00000) != 0) & (exponent >= 0x21) & (exponent <= 0x60)
    plain &= np.abs(got) >= np.finfo(np.float32).tiny
    segyio = fh.segyio_samples(path, endian)
    np.testing.assert_array_equal(got[plain], segyio[plain])
    assert plain.sum() > 1000 and (~plain).sum() > 1000  # both kinds were exercised
    # Beyond float32: inf; exponent 0x21 (2**-148 .. 2**-124): float32 subnormals among them.
    assert np.isinf(got[0]).any() and (np.abs(got[1]) < np.finfo(np.float32).tiny).any()


def test_segy_blocks_by_start_time_read_their_own_traces(tmp_path: Path) -> None:
    import segyio

    path = tmp_path / "f.sgy"
    fh.make_segy(path, 6, 8000, 500.0, "int32")  # 32 kB records: windows read per trace
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        for i in (1, 3, 4):
            f.header[i] = {segyio.TraceField.SecondOfMinute: 9}
    recording = formats.read(path)
    assert [[t.index for t in b.traces] for b in recording.blocks] == [[0, 2, 5], [1, 3, 4]]
    with formats.open_source(path) as source:
        assert_source_is_recording(source, recording)


@pytest.mark.parametrize("endian", ["big", "little"])
def test_su_samples_are_segyio_s(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "f.su"
    fh.make_su(path, 5, 700, 500.0, endian=endian)
    reference = fh.segyio_samples(path, endian, su=True)
    with formats.open_source(path) as source:
        np.testing.assert_array_equal(source.blocks[0].rows(0, 5), reference)
        np.testing.assert_array_equal(source.blocks[0].columns(100, 150), reference[:, 100:150])
        assert_source_is_recording(source, formats.read(path))


def test_a_source_reads_nothing_after_close(tmp_path: Path) -> None:
    path = tmp_path / "f.sgy"
    fh.make_segy(path, 2, 100, 1000.0)
    source = formats.open_source(path)
    source.close()
    with pytest.raises(OSError):
        source.blocks[0].rows(0, 1)


def test_open_source_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy(path, 3, 100, 1000.0, "int32")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(formats.FormatError, match=r"^raw/bad\.sgy: truncated"):
        formats.open_source(path, "raw/bad.sgy")


# --- writers -------------------------------------------------------------------------------


def stream_write(recording: Recording, fmt: str, rows_per_call: int = 2) -> bytes:
    """Write through the streaming writer a few rows per call, as the pipeline does."""
    buffer = io.BytesIO()
    layout = formats.layout_of(recording)
    with formats.open_writer(fmt, buffer, layout) as writer:
        for i, block in enumerate(recording.blocks):
            for start in range(0, len(block.traces), rows_per_call):
                writer.write_rows(i, start, block.data[start : start + rows_per_call])
    return buffer.getvalue()


def whole_write(recording: Recording, fmt: str) -> bytes:
    buffer = io.BytesIO()
    formats.write(recording, buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("dtype", ["int16", "int32", "ibm", "float32"])
def test_segy_writer_writes_segyio_s_bytes(tmp_path: Path, dtype: str, endian: str) -> None:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 7, 400, 1000.0, dtype, endian=endian)
    small = decimated(formats.read(src), 4)
    assert formats.output_format_for(formats.layout_of(small)) == "SEGY"
    reference = tmp_path / "reference.segy"
    fh.segyio_write(small, reference)
    assert stream_write(small, "SEGY") == reference.read_bytes()
    assert whole_write(small, "SEGY") == reference.read_bytes()


def test_segy_writer_keeps_every_trace_header_word_as_segyio(tmp_path: Path) -> None:
    # Random values in every trace header field (within its size) but the timing words:
    # the numpy header encoding must put each where segyio does.
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 5, 200, 1000.0, "int32")
    recording = formats.read(src)
    dtype = traceheader.header_dtype("big")
    timing = {"DelayRecordingTime", "ScalarTraceHeader", "YearDataRecorded", "DayOfYear"}
    timing |= {"HourOfDay", "MinuteOfHour", "SecondOfMinute", *traceheader._SCALED_TIMES}
    rng = np.random.default_rng(3)
    for meta in recording.blocks[0].traces:
        for name in dtype.names or ():
            if name not in timing:
                kind = dtype.fields[name][0]  # type: ignore[index]
                info = np.iinfo(kind)
                meta.headers[name] = int(rng.integers(info.min, info.max, endpoint=True))
    reference = tmp_path / "reference.segy"
    fh.segyio_write(recording, reference)
    assert stream_write(recording, "SEGY", rows_per_call=3) == reference.read_bytes()


def test_segy_writer_with_several_blocks_and_a_path_target(tmp_path: Path) -> None:
    import segyio

    src = tmp_path / "in.sgy"
    fh.make_segy(src, 4, 300, 1000.0, "float32")
    with segyio.open(str(src), "r+", ignore_geometry=True) as f:
        f.header[2] = {segyio.TraceField.SecondOfMinute: 9}
    small = decimated(formats.read(src), 3)
    assert len(small.blocks) == 2
    reference = tmp_path / "reference.segy"
    fh.segyio_write(small, reference)
    out = tmp_path / "out.segy"
    with formats.open_writer("SEGY", out, formats.layout_of(small)) as writer:
        for i, block in enumerate(small.blocks):
            writer.write_rows(i, 0, block.data)
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("endian", ["big", "little"])
def test_su_writer_writes_segyio_s_bytes(tmp_path: Path, endian: str) -> None:
    src = tmp_path / "in.su"
    fh.make_su(src, 5, 400, 1000.0, endian=endian)
    small = decimated(formats.read(src), 4, offset=3)
    assert formats.output_format_for(formats.layout_of(small)) == "SU"
    reference = tmp_path / "reference.su"
    fh.segyio_write(small, reference, su=True)
    assert stream_write(small, "SU") == reference.read_bytes()
    assert whole_write(small, "SU") == reference.read_bytes()


def test_mseed_writer_appends_the_same_records(tmp_path: Path) -> None:
    from obspy import read

    wild = np.tile(np.array([2**30, -(2**30)], dtype=np.int32), 500)
    calm = np.arange(1000, dtype=np.int32)
    ids = ["XX.A.00.HHZ", "XX.B.00.HHZ", "XX.C.00.HHZ"]
    block = Block(np.stack([wild, calm, calm * 3]), 250.0, fh.START_NS, fh.obspy_metas(ids))
    later = fh.START_NS + 10**9
    floats_ids = fh.obspy_metas(["XX.D.00.HHZ", "XX.E.00.HHZ"])
    floats = Block(np.linspace(-1, 1, 2000).reshape(2, -1), 100.0, later, floats_ids)
    recording = Recording("MSEED", [block, floats], "x")
    streamed = stream_write(recording, "MSEED")
    assert streamed == whole_write(recording, "MSEED")
    path = tmp_path / "out.mseed"
    path.write_bytes(streamed)
    assert len(streamed) % 512 == 0
    encodings = [tr.stats.mseed.encoding for tr in read(str(path), details=True)]
    assert encodings == ["INT32", "STEIM2", "STEIM2", "FLOAT32", "FLOAT32"]


def test_mseed_writer_of_codeless_segy_traces(tmp_path: Path) -> None:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 3, 400, 1000.0, "int32")
    small = decimated(formats.read(src), 40)  # 25 Hz: not a SEG-Y interval
    assert formats.output_format_for(formats.layout_of(small)) == "MSEED"
    path = tmp_path / "out.mseed"
    path.write_bytes(stream_write(small, "MSEED"))
    back = formats.read(path)
    assert [t.index for t in back.blocks[0].traces] == [0, 1, 2]
    np.testing.assert_array_equal(back.blocks[0].data, small.blocks[0].data)


@pytest.mark.parametrize(
    ("fmt", "ids", "dtype"),
    [("SAC", ["XX.A.00.HHZ"], "float32"), ("GSE2", ["XX.A..HHZ", "XX.B..HHZ"], "int32")],
)
def test_buffering_writers_write_what_write_writes(
    tmp_path: Path, fmt: str, ids: list[str], dtype: str
) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(ids, 1000, 1000.0, dtype).write(str(src), format=fmt)
    small = decimated(formats.read(src), 4)
    assert formats.output_format_for(formats.layout_of(small)) == fmt
    streamed, whole = tmp_path / "s", tmp_path / "w"
    streamed.write_bytes(stream_write(small, fmt, rows_per_call=1))
    whole.write_bytes(whole_write(small, fmt))
    a, b = formats.read(streamed), formats.read(whole)
    for x, y in zip(a.blocks, b.blocks, strict=True):
        np.testing.assert_array_equal(x.data, y.data)
        assert (x.traces, x.sampling_rate, x.starttime_ns) == (
            y.traces,
            y.sampling_rate,
            y.starttime_ns,
        )


def test_gse2_writer_refuses_samples_cm6_cannot_carry(tmp_path: Path) -> None:
    src = tmp_path / "in"
    fh.obspy_stream(["XX.A..HHZ"], 1000, 1000.0).write(str(src), format="GSE2")
    small = decimated(formats.read(src), 4)
    layout = formats.layout_of(small)
    assert formats.output_format_for(layout) == "GSE2"
    writer = formats.open_writer("GSE2", io.BytesIO(), layout)
    writer.write_rows(0, 0, np.full((1, 250), 2**30, dtype=np.int32))
    with pytest.raises(formats.FormatError, match="GSE2 cannot carry these samples"):
        writer.close()


def _segy_decimated(tmp_path: Path, dtype: str = "int32") -> Recording:
    src = tmp_path / "in.sgy"
    fh.make_segy(src, 3, 300, 1000.0, dtype)
    return decimated(formats.read(src), 2)


@pytest.mark.parametrize(
    "change",
    [
        "rate_40_us_over_int16",
        "non_integer_interval",
        "start_not_in_header",
        "seed_codes",
    ],
)
def test_output_format_for_decides_as_output_format(tmp_path: Path, change: str) -> None:
    small = _segy_decimated(tmp_path)
    block = small.blocks[0]
    if change == "rate_40_us_over_int16":
        block.sampling_rate = 25.0
    elif change == "non_integer_interval":
        block.sampling_rate = 3000 / 7
    elif change == "start_not_in_header":
        block.starttime_ns = fh.START_NS
    else:
        block.traces[0].station = "A"
    assert formats.output_format(small) == "MSEED"
    assert formats.output_format_for(formats.layout_of(small)) == "MSEED"


def test_output_format_for_integer_layouts_means_int32(tmp_path: Path) -> None:
    # Values are unknown to a layout: an integer layout goes to SEG-Y, and the writer refuses
    # rows outside int32 instead of writing them wrong.
    small = _segy_decimated(tmp_path)
    small.blocks[0].data = small.blocks[0].data.astype(np.int64) * 2**20
    assert formats.output_format(small) == "MSEED"  # values known: no format holds them
    layout = formats.layout_of(small)
    assert formats.output_format_for(layout) == "SEGY"
    writer = formats.open_writer("SEGY", io.BytesIO(), layout)
    with pytest.raises(formats.FormatError, match="exceed int32"):
        writer.write_rows(0, 0, small.blocks[0].data)


def test_writer_takes_rows_in_order_only_and_all_of_them(tmp_path: Path) -> None:
    small = _segy_decimated(tmp_path)
    data = small.blocks[0].data
    writer = formats.open_writer("SEGY", io.BytesIO(), formats.layout_of(small))
    with pytest.raises(ValueError, match="out of order"):
        writer.write_rows(0, 1, data[1:2])
    with pytest.raises(ValueError, match="samples"):
        writer.write_rows(0, 0, data[:1, :-1])
    writer.write_rows(0, 0, data[:2])
    with pytest.raises(ValueError, match="before all 3 traces"):
        writer.close()


def test_open_writer_for_a_path_closes_the_file_on_error(tmp_path: Path) -> None:
    small = _segy_decimated(tmp_path)
    out = tmp_path / "out.segy"
    with (
        pytest.raises(RuntimeError),
        formats.open_writer("SEGY", out, formats.layout_of(small)) as writer,
    ):
        writer.write_rows(0, 0, small.blocks[0].data[:1])
        raise RuntimeError("decimation failed")
    assert writer._out.closed  # type: ignore[attr-defined]


def test_no_writer_for_seg2() -> None:
    layout = formats.Layout("SEG2", "x", {}, [])
    with pytest.raises(formats.FormatError, match="no writer for format 'SEG2'"):
        formats.open_writer("SEG2", io.BytesIO(), layout)


# --- memory --------------------------------------------------------------------------------

_SCAN = """
import json, sys
from shared_code import formats

with formats.open_source(sys.argv[1], "big.sgy") as source:
    [block] = source.blocks
    total = 0
    for start in range(0, len(block.traces), 64):
        total += int(block.rows(start, start + 64)[:, ::997].sum())
    edges = block.columns(0, 600)
# VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's (the test process's).
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"rss_mb": hwm / 1024,
                  "sum": total, "edges": list(edges.shape)}))
"""


def test_reading_a_400_mb_segy_by_blocks_stays_under_200_mb(tmp_path: Path) -> None:
    """Peak RSS of a fresh process scanning a ~400 MB int32 SEG-Y by rows and columns."""
    n_traces, n_samples = 4000, 25000  # 4000 × (240 + 100 000) bytes ≈ 401 MB
    meta = _big_layout(n_traces, n_samples)
    path = tmp_path / "big.sgy"
    rows = np.arange(64 * n_samples, dtype=np.int32).reshape(64, n_samples)
    with formats.open_writer("SEGY", path, meta) as writer:
        for start in range(0, n_traces, 64):
            writer.write_rows(0, start, rows[: min(64, n_traces - start)])
    assert path.stat().st_size == 3600 + n_traces * (240 + 4 * n_samples)
    out = subprocess.run(
        [sys.executable, "-c", _SCAN, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    print(f"peak RSS {report['rss_mb']:.0f} MB")
    assert report["edges"] == [n_traces, 600]
    expected = sum(int(rows[: min(64, n_traces - s), ::997].sum()) for s in range(0, n_traces, 64))
    assert report["sum"] == expected
    assert report["rss_mb"] < 200


def _big_layout(n_traces: int, n_samples: int) -> formats.Layout:
    """A SEG-Y layout of int32 traces at 1 kHz, all starting at the helpers' SEG-Y start."""
    header = {"TRACE_SEQUENCE_FILE": 0, "TimeBaseCode": 4}
    metas = [
        TraceMeta(i, headers={**header, "TRACE_SEQUENCE_FILE": i + 1}) for i in range(n_traces)
    ]
    block = formats.BlockLayout(metas, 1000.0, fh.SEGY_START_NS, n_samples, np.dtype(np.int32))
    return formats.Layout("SEGY", "big.sgy", {}, [block])


@pytest.mark.parametrize(("fmt", "endian"), [("SEGY", "big"), ("SEGY", "little"), ("SU", "little")])
def test_trace_headers_built_at_once_are_those_built_per_trace(
    fmt: str, endian: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vectorised trace headers are byte for byte the per-trace ones: every word of the
    input kept at its width and byte order (random values over each word's range), missing
    words 0, start time, sample count and interval replaced."""
    dtype = traceheader.header_dtype(endian)
    rng = np.random.default_rng(3)
    n = 40
    metas = []
    for i in range(n):
        headers: dict[str, int] = {}
        for name in dtype.names or ():
            info = np.iinfo(dtype.fields[name][0])
            headers[name] = int(rng.integers(info.min, info.max, endpoint=True))
        for name in ("YearDataRecorded", "ScalarTraceHeader", *traceheader._SCALED_TIMES):
            headers[name] = 0
        if i % 7 == 3:
            del headers["CDP_X"], headers["TRACE_SEQUENCE_FILE"]  # absent words: 0
        metas.append(TraceMeta(index=i, headers=headers))
    data = fh.samples(n, 50, "float32" if fmt == "SU" else "int32")
    block = Block(data[:25], 500.0, fh.START_NS + 1_234_000, metas[:25])
    later = Block(data[25:], 500.0, fh.START_NS - 123_456_000 + 2_005_000_000, metas[25:])
    recording = Recording(fmt, [block, later], "x", {"endian": endian})
    fast = stream_write(recording, fmt, rows_per_call=7)
    assert fast == whole_write(recording, fmt)
    monkeypatch.setattr(segy.TraceWriter, "_header_words", lambda *_: None)
    assert fast == stream_write(recording, fmt, rows_per_call=7)
