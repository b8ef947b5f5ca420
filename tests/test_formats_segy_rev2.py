"""SEG-Y rev 2.0 with trace header extensions: records of 240 × (1 + N) header bytes + samples.

Files are built by hand (:func:`formats_helpers.make_segy_rev2`): segyio cannot write or read
them. Start times carry nanoseconds (Trace Header Extension 1 bytes 141-144), sample counts
above 32767 and non-integer-µs intervals come from the extended words.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import FormatError, segy
from shared_code.waveforms import Recording
from tests import formats_helpers as fh

#: 2024-03-05T06:07:08.123456789 UTC: not µs-exact, so only extension 1 can carry it.
START_NS = fh.START_NS + 789
NAME = "raw/grane/rev2.sgy"


def _read(path: Path) -> Recording:
    assert formats.detect(path) == "SEGY"  # by content: the name has no extension
    return formats.read(path, NAME)


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("dtype", ["int32", "float32"])
@pytest.mark.parametrize("extensions", [1, 2])
def test_rev2_extensions_read(tmp_path: Path, endian: str, dtype: str, extensions: int) -> None:
    path = tmp_path / "t"
    data = fh.make_segy_rev2(path, 5, 300, 500.0, dtype, endian=endian, extensions=extensions)
    recording = _read(path)
    [block] = recording.blocks
    np.testing.assert_array_equal(block.data, data)
    assert block.data.dtype == np.dtype(dtype)
    assert block.sampling_rate == 2000.0
    assert block.starttime_ns == START_NS  # to the ns
    assert [t.index for t in block.traces] == list(range(5))
    assert [t.headers["TraceNumber"] for t in block.traces] == [1, 2, 3, 4, 5]
    assert [t.headers["GroupX"] for t in block.traces] == [1000, 1010, 1020, 1030, 1040]
    first = block.traces[0].headers
    assert first["ExtTraceSequenceFile"] == 5_000_000_001  # 64-bit, beyond the int32 word
    assert first["NanosecondsOfSecond"] == 123_456_789
    assert first["CableNumber"] == 7
    assert recording.file_headers["endian"] == endian
    assert recording.file_headers[segy.EXTENSIONS_KEY] == extensions
    assert recording.file_headers["textual"][0].startswith(b"C 1 CCS-passive SEG-Y rev 2")
    assert recording.file_headers["binary"]["SEGYRevision"] == 2


@pytest.mark.parametrize("binary_extended", [True, False])
@pytest.mark.parametrize("endian", ["big", "little"])
def test_extended_sample_count_and_fractional_interval(
    tmp_path: Path, binary_extended: bool, endian: str
) -> None:
    """40000 samples (> 32767, standard words 0) at 62.5 µs (not whole µs): from the binary
    header's extended words, or from extension 1 alone when those are 0."""
    path = tmp_path / "t"
    data = fh.make_segy_rev2(
        path, 3, 40000, 62.5, "int32", endian=endian, binary_extended=binary_extended
    )
    [block] = _read(path).blocks
    assert block.n_samples == 40000
    assert block.sampling_rate == 16000.0
    assert block.starttime_ns == START_NS
    np.testing.assert_array_equal(block.data, data)


def test_saturated_standard_sample_counts(tmp_path: Path) -> None:
    """Writers that put 32767 in the 16-bit counts (binary 3221, trace 115) and the real count
    only in extension 1 (bytes 137-140): the extended count wins."""
    path = tmp_path / "t"
    data = fh.make_segy_rev2(path, 3, 40000, 250.0, "int32", binary_extended=False)
    raw = bytearray(path.read_bytes())
    raw[3220:3222] = struct.pack(">H", 32767)
    record = 480 + 40000 * 4
    for i in range(3):
        raw[3600 + i * record + 114 : 3600 + i * record + 116] = struct.pack(">H", 32767)
    path.write_bytes(bytes(raw))
    [block] = _read(path).blocks
    assert block.n_samples == 40000
    assert block.sampling_rate == 4000.0
    np.testing.assert_array_equal(block.data, data)


def test_streaming_reads_rows_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "t"
    data = fh.make_segy_rev2(path, 7, 2000, 1000.0, "float32", endian="little", extensions=2)
    with formats.open_source(path, NAME) as source:
        assert isinstance(source, segy.TraceSource)
        [block] = source.blocks
        assert block.starttime_ns == START_NS
        np.testing.assert_array_equal(block.rows(2, 5), data[2:5])
        np.testing.assert_array_equal(block.columns(1990, 2000), data[:, 1990:])
        np.testing.assert_array_equal(block.columns(0, 3), data[:, :3])


def test_output_is_miniseed(tmp_path: Path) -> None:
    """The SEG-Y writer has only rev 1 standard headers: the extensions would be lost, even
    with a µs-exact start and an integer interval, so the decimated file is miniSEED."""
    path = tmp_path / "t"
    fh.make_segy_rev2(path, 3, 100, 1000.0, "int32", start=fh.SEGY_START_NS)
    recording = _read(path)
    assert formats.output_format(recording) == "MSEED"
    with formats.open_source(path, NAME) as source:
        layout = formats.Layout(
            source.format, source.source, source.file_headers, list(source.blocks)
        )
        assert formats.output_format_for(layout) == "MSEED"
        reason = segy.plan_layout(layout)
        assert isinstance(reason, str) and "trace header extensions" in reason
        with pytest.raises(FormatError, match="cannot write SEG-Y without loss"):
            segy.writer(layout, (tmp_path / "out").open("wb"))


@pytest.mark.parametrize("endian", ["big", "little"])
def test_truncated_rev2_file(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "t"
    fh.make_segy_rev2(path, 3, 100, 1000.0, "int32", endian=endian, extensions=2)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    message = str(err.value)
    assert message.startswith(f"{NAME}: truncated")
    assert "2 240-byte trace header extensions" in message


def test_more_extensions_than_the_file_holds(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy_rev2(path, 1, 10, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3506:3510] = struct.pack(">i", 1000)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=rf"{NAME}: .*announces 1000 trace header extensions"):
        formats.read(path, NAME)


def test_an_extended_count_that_disagrees_and_does_not_walk_is_refused(tmp_path: Path) -> None:
    """A whole number of 100-sample traces, but trace 2's extension 1 says 99: walking the
    traces' own counts does not end at the end of the file, so the count is wrong, not the
    layout (a variable-length file's counts walk exactly to its end)."""
    path = tmp_path / "t"
    fh.make_segy_rev2(path, 3, 100, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3600 + 2 * 880 + 240 + 136 : 3600 + 2 * 880 + 240 + 140] = struct.pack(">I", 99)
    path.write_bytes(bytes(raw))
    with pytest.raises(
        FormatError,
        match=r"trace 2 has 99 samples .* traces 100; as traces of different lengths "
        r".*: trace 3 starts",
    ):
        formats.read(path, NAME)


def test_second_header_must_be_extension_1(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy_rev2(path, 2, 100, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3600 + 240 + 232 : 3600 + 480] = b"ACME0001"
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="trace 0 is not Trace Header Extension 1"):
        formats.read(path, NAME)


def test_bad_nanoseconds_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy_rev2(path, 2, 100, 1000.0, "int32", endian="little")
    raw = bytearray(path.read_bytes())
    raw[3600 + 240 + 140 : 3600 + 240 + 144] = struct.pack("<i", 1_000_000_000)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="trace 0: 1000000000 nanoseconds"):
        formats.read(path, NAME)


def test_rev1_files_are_unchanged_by_the_extension_word(tmp_path: Path) -> None:
    """Rev 0/1 files have no extension count: bytes 3507-3510 are only read for rev >= 2."""
    path = tmp_path / "t"
    data = fh.make_segy(path, 3, 100, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3506:3510] = struct.pack(">i", 3)  # junk in an unassigned rev 1 word
    path.write_bytes(bytes(raw))
    [block] = formats.read(path, NAME).blocks
    np.testing.assert_array_equal(block.data, data)


def test_pipeline_writes_miniseed_with_the_ns_start(tmp_path: Path) -> None:
    """open_source → decimate_file → convert_file (the CLI's ``process``): the decimated file
    is miniSEED and its first sample is the output grid point the ns-exact start gives."""
    from obspy import read

    from shared_code.cli import main
    from shared_code.dsp import design, output_span

    path = tmp_path / "rev2.sgy"
    n_samples, rate = 20000, 1000.0
    fh.make_segy_rev2(path, 4, n_samples, 1e6 / rate, "int32")
    share = tmp_path / "share"
    assert main(["process", "--field", "grane", "--output", str(share), str(path)]) == 0
    [decimated] = [f for f in (share / "decimated").rglob("*") if f.is_file()]
    assert decimated.suffix == ".mseed"
    stream = read(str(next((share / "mseed").rglob("*.mseed"))))
    assert len(stream) == 4
    plan = design(rate, 100.0)
    expected = output_span(plan, START_NS, n_samples, "valid")
    # Without extension 1's nanoseconds the start would be whole seconds: another span.
    assert (
        expected.starttime_ns
        != output_span(plan, START_NS // 10**9 * 10**9, n_samples).starttime_ns
    )
    for trace in stream:
        assert trace.stats.starttime.ns == expected.starttime_ns
        assert trace.stats.npts == expected.n_samples
