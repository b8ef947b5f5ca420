"""SEG-Y whose traces differ in length (each trace header gives its own sample count).

ObsPy writes such files (its writer sets the fixed-length flag, binary bytes 3503-3504, to 0
and each trace's bytes 115-116) and reads them trace by trace; here they must read the same,
through the streaming reader (blocks of one start and length each, read by offset). The
independent reference is ObsPy's own reader; rev 2 files with trace header extensions (which
ObsPy cannot write) are spliced from the hand-built rev 2 files of
:func:`formats_helpers.make_segy_rev2`.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import FormatError, segy
from shared_code.waveforms import NS_PER_S, Block, Recording
from tests import formats_helpers as fh
from tests.test_formats_streaming import assert_source_is_recording

ROOT = Path(__file__).resolve().parent.parent
NAME = "raw/snorre/variable.sgy"
#: 2024-03-05T06:07:08 UTC: ObsPy's SEG-Y reader and writer keep whole seconds only.
START_S = 1_709_618_828
#: Trace lengths (samples) and start offsets (s): equal lengths apart and side by side, one
#: start shared by most traces, so blocks are (start, length) groups of non-adjacent traces.
LENGTHS = (300, 1200, 50, 1200, 777, 300, 300)
STARTS = (0, 0, 0, 60, 0, 0, 0)
#: SEG-Y sample format code -> the dtype ObsPy writes it from.
ENCODINGS = {1: np.float32, 2: np.int32, 3: np.int16, 5: np.float32}


def _obspy_file(
    path: Path, code: int, byteorder: str, *, lengths=LENGTHS, starts=STARTS, rates=None, fmt="SEGY"
) -> None:
    import obspy

    traces = []
    rates = rates or [500.0] * len(lengths)
    for i, (n, offset) in enumerate(zip(lengths, starts, strict=True)):
        values = fh.samples(1, n, "int16", seed=i)[0]  # within ±20000: exact in every code
        data = values.astype(ENCODINGS[code])
        if ENCODINGS[code] is np.float32:
            data = data / np.float32(8)  # a fraction that IBM and IEEE floats hold exactly
        stats = {"sampling_rate": rates[i], "starttime": obspy.UTCDateTime(START_S + offset)}
        traces.append(obspy.Trace(data, stats))
    stream = obspy.Stream(traces)
    if fmt == "SU":  # float32 only, no file headers
        stream.write(str(path), format="SU", byteorder=byteorder)
        return
    with pytest.warns(UserWarning, match="CREATING TRACE HEADER"):
        stream.write(str(path), format="SEGY", data_encoding=code, byteorder=byteorder)


def _as_obspy_reads(path: Path, source: formats.Source, fmt: str = "SEGY") -> Recording:
    """The source's blocks (same order and traces) filled with what ObsPy reads: samples,
    sampling rate and start time of each block's traces, checked to agree within a block."""
    import obspy

    stream = obspy.read(str(path), format=fmt)
    blocks = []
    for block in source.blocks:
        members = [stream[m.index] for m in block.traces]
        assert (
            len({(tr.stats.starttime.ns, tr.stats.sampling_rate, tr.stats.npts) for tr in members})
            == 1
        )
        data = np.stack([tr.data.astype(tr.data.dtype.newbyteorder("=")) for tr in members])
        stats = members[0].stats
        blocks.append(Block(data, stats.sampling_rate, stats.starttime.ns, block.traces))
    assert sorted(m.index for b in source.blocks for m in b.traces) == list(range(len(stream)))
    return Recording(source.format, blocks, source.source, source.file_headers)


@pytest.mark.parametrize("byteorder", [">", "<"])
@pytest.mark.parametrize("code", sorted(ENCODINGS))
def test_obspy_written_traces_of_different_lengths_read_as_obspy_reads(
    tmp_path: Path, code: int, byteorder: str
) -> None:
    path = tmp_path / "v"
    _obspy_file(path, code, byteorder)
    assert formats.detect(path) == "SEGY"
    with formats.open_source(path, NAME) as source:
        assert isinstance(source, segy.TraceSource)
        assert source.file_headers["endian"] == ("big" if byteorder == ">" else "little")
        # (start, length) groups in order of first trace: traces 0 and 5, 6 share one.
        assert [[m.index for m in b.traces] for b in source.blocks] == [
            [0, 5, 6], [1], [2], [3], [4],
        ]  # fmt: skip
        assert [b.n_samples for b in source.blocks] == [300, 1200, 50, 1200, 777]
        assert source.blocks[3].starttime_ns == (START_S + 60) * NS_PER_S
        # Every kind of read (rows, columns, stored rows, edges) equals ObsPy's samples.
        assert_source_is_recording(source, _as_obspy_reads(path, source))
    with pytest.raises(OSError):  # the per-length views share the closed descriptor
        source.blocks[1].rows(0, 1)


@pytest.mark.parametrize(
    ("fmt", "lengths"),
    [("SEGY", (400, 400, 400, 400)), ("SEGY", (400, 100, 400, 250)), ("SU", (400,) * 4)],
)
def test_obspy_written_traces_of_different_rates_read_as_obspy_reads(
    tmp_path: Path, fmt: str, lengths: tuple[int, ...]
) -> None:
    """ObsPy writes each trace's interval in its bytes 117-118 and reads it back per trace:
    where those words differ, each trace keeps its own rate (one block per start, rate and
    length), whatever the binary header's (first trace's) interval says."""
    path = tmp_path / "r"
    rates = [500.0, 250.0, 500.0, 1000.0]
    _obspy_file(path, 5, "<", lengths=lengths, starts=(0, 0, 0, 0), rates=rates, fmt=fmt)
    assert formats.detect(path) == fmt
    with formats.open_source(path, NAME) as source:
        assert [b.sampling_rate for b in source.blocks] == [500.0, 250.0, 1000.0]
        assert [[m.index for m in b.traces] for b in source.blocks] == [[0, 2], [1], [3]]
        assert_source_is_recording(source, _as_obspy_reads(path, source, fmt))


def test_a_whole_number_of_traces_by_chance_still_reads_each_trace_length(tmp_path: Path) -> None:
    """Lengths 100, 50, 150, 100 fill exactly four traces of the binary header's 100 samples
    (ObsPy writes the first trace's count there): the traces' own counts, which walk exactly
    to the end of the file, win over that coincidence."""
    path = tmp_path / "v"
    _obspy_file(path, 2, ">", lengths=(100, 50, 150, 100), starts=(0, 0, 0, 0))
    assert (path.stat().st_size - 3600) % (240 + 4 * 100) == 0
    with formats.open_source(path, NAME) as source:
        assert [b.n_samples for b in source.blocks] == [100, 50, 150]
        assert_source_is_recording(source, _as_obspy_reads(path, source))


def test_a_fixed_length_file_with_one_wrong_trace_count_stays_fixed_length(
    tmp_path: Path,
) -> None:
    """A trace header whose count disagrees with the file but does not walk to the end of the
    file is a wrong word, not a variable-length file: read as before, by the binary count."""
    path = tmp_path / "f"
    data = fh.make_segy(path, 3, 100, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3600 + 640 + 114 : 3600 + 640 + 116] = struct.pack(">H", 99)  # trace 1 of 640 bytes
    path.write_bytes(bytes(raw))
    [block] = formats.read(path, NAME).blocks
    np.testing.assert_array_equal(block.data, data)


# --- refusals --------------------------------------------------------------------------------


def _three_traces(tmp_path: Path, last: int = 500) -> tuple[Path, list[int]]:
    """An ObsPy file of 300, 200 and ``last`` int32 samples and its traces' byte offsets."""
    path = tmp_path / "v"
    _obspy_file(path, 2, ">", lengths=(300, 200, last), starts=(0, 0, 0))
    return path, [3600, 3600 + 240 + 1200, 3600 + 480 + 2000]


def test_a_truncated_variable_length_file_is_refused_with_the_trace(tmp_path: Path) -> None:
    path, offsets = _three_traces(tmp_path)
    size = path.stat().st_size - 10
    path.write_bytes(path.read_bytes()[:size])
    with pytest.raises(FormatError) as err:
        formats.open_source(path, NAME)
    assert str(err.value).startswith(
        f"{NAME}: truncated SEG-Y: trace 2 at byte {offsets[2]} has 500 samples (trace header "
        f"bytes 115-116), so it ends at byte {offsets[2] + 240 + 2000}, past the end of the "
        f"file at byte {size}; read as traces of one length, "
    )


def test_a_file_cut_inside_a_trace_header_is_refused(tmp_path: Path) -> None:
    path, offsets = _three_traces(tmp_path)
    path.write_bytes(path.read_bytes()[: offsets[2] + 100])
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    assert str(err.value).startswith(
        f"{NAME}: truncated SEG-Y: trace 2 starts at byte {offsets[2]}, but the file ends at "
        f"byte {offsets[2] + 100}, inside its 240-byte headers"
    )


def test_a_trace_of_no_samples_is_refused(tmp_path: Path) -> None:
    """ObsPy refuses a count below 1 too (``SEGYTrace._read_trace``)."""
    path, offsets = _three_traces(tmp_path)
    raw = bytearray(path.read_bytes())
    raw[offsets[1] + 114 : offsets[1] + 116] = bytes(2)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    assert str(err.value).startswith(
        f"{NAME}: SEG-Y trace lengths do not add up: trace 1 at byte {offsets[1]}: trace header "
        "bytes 115-116 hold 0 samples; read as traces of one length, "
    )


def test_a_wrong_count_in_a_whole_number_of_traces_by_chance_is_explained(
    tmp_path: Path,
) -> None:
    """300, 200, 400 samples fill three traces of 300 (the binary count): read as such, trace
    2's header is samples of trace 1 (a garbage date); the refusal says that the traces' own
    counts were walked too, and where that failed."""
    path, offsets = _three_traces(tmp_path, last=400)
    assert (path.stat().st_size - 3600) % (240 + 1200) == 0
    raw = bytearray(path.read_bytes())
    raw[offsets[1] + 114 : offsets[1] + 116] = bytes(2)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    message = str(err.value)
    assert message.startswith(f"{NAME}: trace 2: invalid recording time")
    assert message.endswith(
        "; as traces of different lengths (as the trace headers' own counts differ from the "
        f"file's 300): trace 1 at byte {offsets[1]}: trace header bytes 115-116 hold 0 samples"
    )


# --- rev 2: trace header extensions -------------------------------------------------------------


def _rev2_file(tmp_path: Path, endian: str) -> tuple[Path, np.ndarray, np.ndarray]:
    """Two traces of 40000 samples (count only in extension 1 bytes 137-140: the standard
    word holds 0), then one of 300 whose extension 1 count is 0 (bytes 115-116 give it);
    fixed-length flag 0. Returns the path and the two files' samples."""
    order = ">" if endian == "big" else "<"
    long_path, short_path = tmp_path / "long", tmp_path / "short"
    long = fh.make_segy_rev2(long_path, 2, 40000, 250.0, "int32", endian=endian)
    short = fh.make_segy_rev2(short_path, 1, 300, 250.0, "int32", endian=endian)
    head = bytearray(long_path.read_bytes())
    struct.pack_into(f"{order}h", head, 3502, 0)  # fixed-length trace flag: lengths may vary
    record = bytearray(short_path.read_bytes()[3600:])
    struct.pack_into(f"{order}I", record, 240 + 136, 0)
    path = tmp_path / "rev2"
    path.write_bytes(bytes(head) + bytes(record))
    return path, long, short


@pytest.mark.parametrize("endian", ["big", "little"])
def test_rev2_traces_of_different_lengths(tmp_path: Path, endian: str) -> None:
    path, long, short = _rev2_file(tmp_path, endian)
    recording = formats.read(path, NAME)
    assert [(b.n_samples, [m.index for m in b.traces]) for b in recording.blocks] == [
        (40000, [0, 1]),
        (300, [2]),
    ]
    np.testing.assert_array_equal(recording.blocks[0].data, long)
    np.testing.assert_array_equal(recording.blocks[1].data, short)
    assert {b.starttime_ns for b in recording.blocks} == {fh.START_NS + 789}  # to the ns
    assert {b.sampling_rate for b in recording.blocks} == {4000.0}
    assert recording.blocks[0].traces[0].headers["ExtTraceSequenceFile"] == 5_000_000_001
    with formats.open_source(path, NAME) as source:
        assert_source_is_recording(source, recording)


def test_rev2_varying_extension_counts_are_refused(tmp_path: Path) -> None:
    path, _, _ = _rev2_file(tmp_path, "big")
    raw = bytearray(path.read_bytes())
    third = 3600 + 2 * (480 + 160000)
    struct.pack_into(">H", raw, third + 240 + 156, 2)  # extension 1 bytes 157-158
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=r"trace 2 has 2 trace header extensions .*varying"):
        formats.read(path, NAME)


# --- writing: the decimated file --------------------------------------------------------------


def test_the_decimated_file_of_variable_length_traces_is_miniseed(tmp_path: Path) -> None:
    """The SEG-Y writer has one sample count for all traces (:func:`segy.plan_layout`): traces
    of different lengths go to miniSEED."""
    path = tmp_path / "v"
    _obspy_file(path, 5, ">")
    with formats.open_source(path, NAME) as source:
        layout = formats.Layout(
            source.format, source.source, source.file_headers, list(source.blocks)
        )
        assert segy.plan_layout(layout) == "traces differ in sample rate or length"
        assert formats.output_format_for(layout) == "MSEED"


# --- memory ----------------------------------------------------------------------------------

_SCAN = """
import json, sys
from shared_code import formats

def vm(key):
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(key)) / 1024

before = vm("VmRSS:")
with formats.open_source(sys.argv[1], "big.sgy") as source:
    total = 0
    for block in source.blocks:
        for start in range(0, len(block.traces), 64):
            total += int(block.rows(start, start + 64)[:, ::997].sum())
        head, tail = block.edges(600)
        total += int(head.sum()) + int(tail.sum())
    blocks = [(b.n_samples, len(b.traces)) for b in source.blocks]
print(json.dumps({"before_mb": before, "peak_mb": vm("VmHWM:"), "sum": total, "blocks": blocks}))
"""


def test_reading_a_200_mb_variable_length_file_by_chunks_stays_bounded(tmp_path: Path) -> None:
    """Peak RSS of a fresh process opening (walking 2000 trace headers) and reading a ~200 MB
    variable-length SEG-Y by rows and edges grows by what it asks for (64 rows of ≤ 120 kB,
    600-sample edges of 1000 traces, the read buffer: ~20 MB), not by the file's size."""
    lengths = (20000, 30000)
    rows = {n: (np.arange(64 * n, dtype=np.int32).reshape(64, n) % 100_003) for n in lengths}
    path = tmp_path / "big.sgy"
    with path.open("wb") as out:
        out.write(_rev1_head(lengths[0]))
        header = bytearray(240)
        struct.pack_into(">hhhhh", header, 156, 2024, 65, 6, 7, 8)
        for i in range(2000):
            n = lengths[i % 2]
            struct.pack_into(">i", header, 0, i + 1)  # trace sequence number in line
            struct.pack_into(">H", header, 114, n)
            out.write(header)
            out.write(rows[n][(i // 2) % 64].astype(">i4").tobytes())
    assert path.stat().st_size > 200e6
    out_ = subprocess.run(
        [sys.executable, "-c", _SCAN, str(path)], cwd=ROOT, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    report = json.loads(out_.stdout)
    print(f"RSS {report['before_mb']:.0f} MB before opening, peak {report['peak_mb']:.0f} MB")
    assert report["blocks"] == [[20000, 1000], [30000, 1000]]
    expected = sum(
        int(rows[n][r, ::997].sum()) + int(rows[n][r, :600].sum()) + int(rows[n][r, -600:].sum())
        for n in lengths
        for r in (k % 64 for k in range(1000))
    )
    assert report["sum"] == expected
    assert report["peak_mb"] - report["before_mb"] < 60  # ~20 MB asked for, 200 MB on disk


def _rev1_head(n_samples: int) -> bytes:
    """Textual (EBCDIC) and binary headers of a rev 1 file: 1000 µs, int32, fixed-length flag 0."""
    text = "C 1 CCS-passive variable-length test file".ljust(3200).encode("cp037")
    binary = bytearray(400)
    struct.pack_into(">hhHH", binary, 16, 1000, 1000, n_samples, n_samples)
    struct.pack_into(">h", binary, 24, 2)
    struct.pack_into(">Hh", binary, 300, 0x0100, 0)
    return text + bytes(binary)
