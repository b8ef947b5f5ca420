"""CCSW, the lossless container for decimated files miniSEED cannot carry: round trips,
streaming, bounded memory, refusals."""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import ccsw, mseed
from shared_code.formats.obspy_bridge import round_us
from shared_code.waveforms import Block, Recording, TraceMeta
from tests.test_formats_streaming import assert_source_is_recording

ROOT = Path(__file__).resolve().parent.parent
#: 2010-03-03T02:00:00.000000001 UTC: a time only ns carry.
START_NS = 1_267_581_600_000_000_001


def _write(recording: Recording, path: Path, rows_per_call: int | None = None) -> None:
    """Through the streaming writer, ``rows_per_call`` rows at a time (None: whole blocks)."""
    with formats.open_writer("CCSW", path, formats.layout_of(recording)) as writer:
        for i, block in enumerate(recording.blocks):
            step = rows_per_call or max(1, len(block.traces))
            for start in range(0, len(block.traces), step):
                writer.write_rows(i, start, block.data[start : start + step])


def assert_exact(got: Recording, want: Recording) -> None:
    """Same blocks: trace metadata (index, codes, headers), rate, ns start, samples."""
    assert len(got.blocks) == len(want.blocks)
    for x, y in zip(got.blocks, want.blocks, strict=True):
        assert x.traces == y.traces
        assert x.sampling_rate == y.sampling_rate  # the same float, not a near one
        assert x.starttime_ns == y.starttime_ns
        kind = np.int32 if y.data.dtype.kind in "iu" else np.float32
        assert x.data.dtype == np.dtype(kind)
        np.testing.assert_array_equal(x.data, y.data.astype(kind))


def _odd_recording() -> Recording:
    """Ids miniSEED cannot carry, headers of every JSON kind, ns start, two blocks."""
    rng = np.random.default_rng(7)
    traces = [
        TraceMeta(0, channel="a100"),  # WIN: 4-character channel, no other code
        TraceMeta(1, "ETNA", "EMFO", "", "Z"),  # DMX: 4-character network
        TraceMeta(2, "", "TESTbe", "", "HHZ", {"calib": 0.5}),  # CSS: 6-character station
        TraceMeta(3, "", "GRB1", "", " BZ"),  # GSE1: a leading space
        TraceMeta(4, "Ñ", "ÅSGÅRD", "😀", "ch\u00e9", {"n": None, "t": True, "l": [1, "x"]}),
        TraceMeta(5, "", "", "", "", {"nested": {"a": [1.5, -2]}, "big": 2**62}),
        TraceMeta(6, "", "", "", "", {}),  # code-less
        TraceMeta(123_456, "", "", "", ""),  # code-less, index past miniSEED's 99999
        TraceMeta(8, "XX", "A", "", "HHZ"),
        TraceMeta(9, "XX", "A", "", "HHZ"),  # the same id twice
    ]
    ints = rng.integers(-(2**31), 2**31, size=(len(traces), 257)).astype(np.int32)
    floats = (rng.standard_normal((2, 100)) * 1e-20).astype(np.float32)
    float_traces = [TraceMeta(10, "XX", "B", "00", "HHZ", {"nan": math.nan}), TraceMeta(11)]
    return Recording(
        "WIN",
        [
            Block(ints, 1e6 / 3, START_NS, traces),  # a rate from a µs interval: not short
            Block(floats, 0.1, -START_NS, float_traces),  # before 1970
        ],
        "odd",
    )


def test_round_trip_of_odd_ids_and_headers(tmp_path: Path) -> None:
    recording = _odd_recording()
    layout = formats.layout_of(recording)
    assert mseed.layout_problem(layout) is not None
    assert formats.output_format(recording) == formats.output_format_for(layout) == "CCSW"
    path = tmp_path / "x.ccsw"
    _write(recording, path)
    back = formats.read(path, "odd.ccsw")
    assert back.format == "CCSW"
    assert back.file_headers == {"input_format": "WIN"}
    nan = back.blocks[1].traces[0].headers.pop("nan")  # NaN != NaN: compared on its own
    assert math.isnan(nan)
    recording.blocks[1].traces[0].headers.pop("nan")
    assert_exact(back, recording)


def test_empty_headers_and_codes_and_an_empty_block(tmp_path: Path) -> None:
    blocks = [
        Block(np.zeros((3, 0), np.int32), 10.0, 0, [TraceMeta(i) for i in range(3)]),
        Block(np.ones((1, 5), np.float32), 10.0, 0, [TraceMeta(3)]),
    ]
    recording = Recording("SEG2", blocks, "empty")
    path = tmp_path / "e.ccsw"
    formats.write(recording, path, "CCSW")
    assert_exact(formats.read(path, "e"), recording)


def test_many_blocks_streamed_in_chunks(tmp_path: Path) -> None:
    """120 blocks of varied shapes, written a few rows per call, read back by every kind of
    slice (rows, columns, stored rows, edges) as ``read()`` gives."""
    rng = np.random.default_rng(11)
    blocks, index = [], 0
    for b in range(120):
        n, ns = int(rng.integers(1, 9)), int(rng.integers(1, 300))
        dtype = (np.int16, np.int32, np.float32, np.float64)[b % 4]
        data = (rng.standard_normal((n, ns)) * 1000).astype(dtype)
        traces = [TraceMeta(index + i, "XX", f"S{b}", "", "HHZ") for i in range(n)]
        blocks.append(Block(data, 250.0 + b, START_NS + b * 997, traces))
        index += n
    recording = Recording("SEGY", blocks, "many")
    path = tmp_path / "m.ccsw"
    _write(recording, path, rows_per_call=3)
    back = formats.read(path, "m")
    assert_exact(back, recording)
    with formats.open_source(path, "m") as source:
        assert_source_is_recording(source, back)


def test_rows_in_either_byte_order_are_stored_little_endian(tmp_path: Path) -> None:
    """Big-endian rows (as SEG-Y stores them) are written as the same values, and the file
    holds little-endian samples at the offset the header says."""
    values = np.arange(-6, 6, dtype=np.int32).reshape(2, 6) * 100_000
    block = formats.BlockLayout([TraceMeta(0), TraceMeta(1)], 100.0, 0, 6, np.dtype(">i4"))
    layout = formats.Layout("SEGY", "be", {}, [block])
    path = tmp_path / "be.ccsw"
    with formats.open_writer("CCSW", path, layout) as writer:
        writer.write_rows(0, 0, values[:1].astype(">i4"))
        writer.write_rows(0, 1, values[1:].astype(">i4"))
    raw = path.read_bytes()
    magic, version, length = struct.unpack_from("<8sIQ", raw)
    assert (magic, version) == (ccsw.MAGIC, ccsw.VERSION)
    header = json.loads(raw[20 : 20 + length])
    assert header["blocks"][0]["dtype"] == "<i4"
    np.testing.assert_array_equal(np.frombuffer(raw[20 + length :], "<i4").reshape(2, 6), values)
    [got] = formats.read(path, "be").blocks
    np.testing.assert_array_equal(got.data, values)


def test_writer_refuses_what_it_cannot_carry_exactly(tmp_path: Path) -> None:
    block = formats.BlockLayout([TraceMeta(0)], 100.0, 0, 4, np.dtype(np.int32))
    layout = formats.Layout("X", "field/x", {}, [block])
    writer = formats.open_writer("CCSW", tmp_path / "a", layout)
    with pytest.raises(formats.FormatError, match=r"field/x: .*float32 rows"):
        writer.write_rows(0, 0, np.zeros((1, 4), np.float32))
    with pytest.raises(formats.FormatError, match=r"field/x: .*exceed int32"):
        writer.write_rows(0, 0, np.full((1, 4), 2**40, np.int64))
    writer.write_rows(0, 0, np.full((1, 4), -(2**31), np.int64))  # refused rows left no trace
    writer.close()
    [got] = formats.read(tmp_path / "a", "a").blocks
    np.testing.assert_array_equal(got.data, np.full((1, 4), -(2**31)))
    raw_header = [TraceMeta(0, headers={"raw": b"\x00"})]
    bad = formats.Layout("X", "field/x", {}, [dataclasses.replace(block, traces=raw_header)])
    with pytest.raises(formats.FormatError, match=r"field/x: cannot write CCSW: .*bytes"):
        formats.open_writer("CCSW", tmp_path / "b", bad)


# --- refusals: a corrupt or truncated container is named ----------------------------------


def _good(tmp_path: Path) -> bytes:
    path = tmp_path / "good.ccsw"
    _write(_odd_recording(), path)
    return path.read_bytes()


def _edit_header(raw: bytes, old: bytes, new: bytes) -> bytes:
    """The file with its JSON header edited (and the header length set to match)."""
    end = 20 + struct.unpack_from("<Q", raw, 12)[0]
    header = raw[20:end].replace(old, new, 1)
    assert header != raw[20:end]
    return raw[:12] + struct.pack("<Q", len(header)) + header + raw[end:]


def _header_end(raw: bytes) -> int:
    return 20 + struct.unpack_from("<Q", raw, 12)[0]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda raw: raw[:-1], r"is \d+ bytes, its header describes \d+ \(truncated\)"),
        (lambda raw: raw + b"\0", r"data after the last block"),
        (lambda raw: raw[: _header_end(raw) - 5], r"header of \d+ bytes does not fit"),
        (lambda raw: raw[:12], r"file ended at byte 12"),
        (lambda raw: raw[:8] + struct.pack("<I", 2) + raw[12:], r"version 2 is not supported"),
        (lambda raw: raw[:20] + b"\xff" + raw[21:], r"corrupt CCSW header: UnicodeDecodeError"),
        (lambda raw: _edit_header(raw, b'"blocks":[{', b'"blocks":[['), r"corrupt CCSW header"),
        (lambda raw: _edit_header(raw, b'"dtype":"<i4"', b'"dtype":"<i8"'), r"sample type '<i8'"),
        (lambda raw: _edit_header(raw, b'"index":[0,', b'"index":['), r"different lengths"),
        (lambda raw: _edit_header(raw, b'"n_samples":257', b'"n_samples":-1'), r"count -1"),
        (lambda raw: _edit_header(raw, b'"sampling_rate":0.1', b'"sampling_rate":0'), r"rate 0"),
        (lambda raw: _edit_header(raw, b'"n_samples":257', b'"n_samples":258'), r"\(truncated\)"),
    ],
)
def test_a_damaged_container_is_refused_with_its_name(tmp_path: Path, damage, reason) -> None:
    path = tmp_path / "bad.ccsw"
    path.write_bytes(damage(_good(tmp_path)))
    name = "grane/2024/file.sgy.ccsw"
    for read in (formats.read, formats.open_source):
        with pytest.raises(formats.FormatError, match=reason) as info:
            read(path, name)
        assert str(info.value).startswith(f"{name}: ")


def test_a_file_is_a_container_by_its_magic_bytes_alone(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(_good(tmp_path))
    assert formats.detect(path) == "CCSW"
    path.write_bytes(b"\x89CCSW\n\x1a" + path.read_bytes()[8:])  # CR LF turned into LF
    with pytest.raises(formats.FormatError, match="not seismic data"):
        formats.detect(path, "x")


# --- memory --------------------------------------------------------------------------------

_SCAN = """
import json, sys
from shared_code import formats

def vm(key):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(key)) / 1024

with formats.open_source(sys.argv[1], "big.ccsw") as source:
    before = vm("VmRSS:")
    total = 0
    for block in source.blocks:
        for start in range(0, len(block.traces), 64):
            total += int(block.rows(start, start + 64)[:, ::997].sum())
        head, tail = block.edges(600)
        total += int(head.sum()) + int(tail.sum())
print(json.dumps({"before_mb": before, "peak_mb": vm("VmHWM:"), "sum": total}))
"""


def test_reading_a_200_mb_container_by_chunks_stays_bounded(tmp_path: Path) -> None:
    """Peak RSS of a fresh process reading a ~200 MB container by rows and edges grows by
    what it asks for (64 rows of 50 kB, two 600-sample edge arrays of 2000 traces: ~13 MB),
    not by the file's size."""
    n_traces, n_samples = 2000, 25000  # 2 blocks × 1000 traces × 100 kB = 200 MB
    rows = np.arange(64 * n_samples, dtype=np.int32).reshape(64, n_samples) % 100_003
    metas = [TraceMeta(i, channel=f"a{i:04d}") for i in range(n_traces)]
    blocks = [
        formats.BlockLayout(metas[:1000], 100.0, START_NS, n_samples, np.dtype(np.int32)),
        formats.BlockLayout(metas[1000:], 100.0, START_NS + 1, n_samples, np.dtype(np.int32)),
    ]
    layout = formats.Layout("WIN", "big", {}, blocks)
    path = tmp_path / "big.ccsw"
    with formats.open_writer("CCSW", path, layout) as writer:
        for b in range(2):
            for start in range(0, 1000, 64):
                writer.write_rows(b, start, rows[: min(64, 1000 - start)])
    assert path.stat().st_size > 200e6
    out = subprocess.run(
        [sys.executable, "-c", _SCAN, str(path)], cwd=ROOT, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    print(f"RSS {report['before_mb']:.0f} MB before reading, peak {report['peak_mb']:.0f} MB")
    traces = [i % 64 for i in range(1000)]  # trace i of a block was written from rows[i % 64]
    expected = 2 * sum(
        int(rows[r, ::997].sum()) + int(rows[r, :600].sum()) + int(rows[r, -600:].sum())
        for r in traces
    )
    assert report["sum"] == expected
    assert report["peak_mb"] - report["before_mb"] < 40  # ~13 MB asked for, 200 MB on disk


# --- which intermediate --------------------------------------------------------------------


def _meta(index: int, seed_id: str) -> TraceMeta:
    net, sta, loc, cha = seed_id.split(".")
    return TraceMeta(index, net, sta, loc, cha)


@pytest.mark.parametrize(
    ("traces", "expected"),
    [
        ([_meta(0, "XX.A.00.HHZ"), _meta(1, "XX.B.00.HHZ")], "MSEED"),
        ([_meta(0, "..."), _meta(99_999, "...")], "MSEED"),  # code-less: index as station
        ([_meta(0, "XX.A.00.HHZ"), _meta(1, "XX.0..HHZ")], "MSEED"),  # digits, with codes
        ([_meta(0, "..."), _meta(100_000, "...")], "CCSW"),  # index past 5 digits
        ([_meta(0, "...a100"), _meta(1, "...a101")], "CCSW"),  # WIN channel
        ([_meta(0, ".TESTbe..HHZ")], "CCSW"),  # 6-character station
        ([_meta(0, ".GRB1.. BZ")], "CCSW"),  # ObsPy strips the space
        ([_meta(0, ".123.."), _meta(1, "...")], "CCSW"),  # a lone digit station is an index
        ([_meta(0, "XX.ÅS.00.HHZ")], "CCSW"),  # not ASCII
        ([_meta(0, "XX.A.00.HHZ"), _meta(1, "XX.A.00.HHZ")], "CCSW"),  # one id twice
    ],
)
def test_the_intermediate_is_miniseed_only_where_it_reads_back_exactly(
    tmp_path: Path, traces: list[TraceMeta], expected: str
) -> None:
    """SEG-2 has no writer: the decimated file is miniSEED where ObsPy reads back the same
    ids and indices, CCSW elsewhere; either way the read-back is the written recording."""
    rng = np.random.default_rng(5)
    # One block per trace, abutting in time: the case ObsPy's miniSEED reader joins.
    blocks = [
        Block(rng.integers(-99, 99, (1, 50)).astype(np.int32), 100.0, START_NS + k * 500_000_000,
              [meta])
        for k, meta in enumerate(traces)
    ]  # fmt: skip
    recording = Recording("SEG2", blocks, "x")
    assert formats.output_format(recording) == expected
    assert formats.output_format_for(formats.layout_of(recording)) == expected
    path = tmp_path / "out"
    formats.write(recording, path, expected)
    back = formats.read(path, "out")
    assert back.format == expected
    for got, want in zip(back.blocks, recording.blocks, strict=True):
        assert got.traces == want.traces
        np.testing.assert_array_equal(got.data, want.data)
        exact = want.starttime_ns if expected == "CCSW" else round_us(want.starttime_ns)
        assert got.starttime_ns == exact  # miniSEED holds µs


def test_segy_trace_headers_are_kept_as_a_word_table(tmp_path: Path) -> None:
    """SEG-Y/SU header words (thousands of traces × ~90 words) go in binary, one int64 table
    per block, not as JSON objects; read back as the same words. A block with one header set
    outside the table is written as JSON objects instead, equally exact."""
    from tests import formats_helpers as fh

    src = tmp_path / "in.sgy"
    fh.make_segy(src, 6, 50, 1000.0, "int32")
    segy = formats.read(src)
    [block] = segy.blocks
    odd = Block(block.data[4:].copy(), block.sampling_rate, block.starttime_ns + 1,
                [dataclasses.replace(t) for t in block.traces[4:]])  # fmt: skip
    odd.traces[0].headers["Note"] = "set by hand"  # now not a plain row of the table
    first = Block(block.data[:4], block.sampling_rate, block.starttime_ns, block.traces[:4])
    recording = Recording("SEGY", [first, odd], "segy")
    path = tmp_path / "h.ccsw"
    formats.write(recording, path, "CCSW")
    raw = path.read_bytes()
    header = json.loads(raw[20 : _header_end(raw)])
    names = header["blocks"][0]["header_words"]
    assert "headers" not in header["blocks"][0] and "GroupX" in names
    assert "header_words" not in header["blocks"][1]
    words = np.frombuffer(raw, "<i8", 4 * len(names), _header_end(raw)).reshape(4, len(names))
    assert words[:, names.index("GroupX")].tolist() == [t.headers["GroupX"] for t in first.traces]
    back = formats.read(path, "h")
    assert_exact(back, recording)
    assert back.blocks[1].traces[0].headers["Note"] == "set by hand"
    path.write_bytes(raw[: _header_end(raw) + 8])
    with pytest.raises(formats.FormatError, match=r"^h: CCSW file ends inside a header-word"):
        formats.read(path, "h")
