"""Format detection by content, reading every format, and the bad-input errors."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import FormatError
from tests import formats_helpers as fh

ROOT = Path(__file__).resolve().parent.parent


def _obspy_file(path: Path, fmt: str, ids: list[str], dtype: str = "int32") -> np.ndarray:
    stream = fh.obspy_stream(ids, 200, 250.0, dtype)
    stream.write(str(path), format=fmt)
    return np.stack([tr.data for tr in stream])


# Every file gets a misleading extension: detection must look at the content only.
BUILDERS = {
    "SEGY": lambda p: fh.make_segy(p, 3, 100, 1000.0),
    "SU": lambda p: fh.make_su(p, 3, 100, 1000.0),
    "SEG2": lambda p: fh.make_seg2(p, 3, 100, 1000.0),
    "MSEED": lambda p: _obspy_file(p, "MSEED", ["XX.A.00.HHZ"]),
    "SAC": lambda p: _obspy_file(p, "SAC", ["XX.A.00.HHZ"], "float32"),
    "GSE2": lambda p: _obspy_file(p, "GSE2", ["XX.A..HHZ"]),
    "TSPAIR": lambda p: _obspy_file(p, "TSPAIR", ["XX.A.00.HHZ"]),
}


@pytest.mark.parametrize("fmt", BUILDERS)
def test_detects_format_by_content_not_extension(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "misnamed.png"
    BUILDERS[fmt](path)
    recording = formats.read(path, "raw/x/misnamed.png")
    assert recording.format == fmt
    assert recording.source == "raw/x/misnamed.png"
    assert formats.detect(path) == ("OBSPY" if fmt == "TSPAIR" else fmt)


def test_importing_the_registry_loads_neither_obspy_nor_segyio() -> None:
    code = "import sys, shared_code.formats; print(sorted({'obspy', 'segyio'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [("int16", np.int16), ("int32", np.int32), ("ibm", np.float32), ("float32", np.float32)],
)
def test_reads_segy(tmp_path: Path, dtype: str, expected: type, endian: str) -> None:
    path = tmp_path / "f.sgy"
    data = fh.make_segy(path, 5, 300, 2000.0, dtype, endian=endian)
    recording = formats.read(path, "f.sgy")
    [block] = recording.blocks
    assert block.data.dtype == expected
    np.testing.assert_array_equal(block.data, data)
    assert block.sampling_rate == 2000.0
    assert block.starttime_ns == fh.SEGY_START_NS
    assert [t.index for t in block.traces] == list(range(5))
    assert block.traces[2].headers["GroupX"] == 1020
    assert block.traces[2].headers["TRACE_SEQUENCE_FILE"] == 3
    assert block.traces[0].headers["DelayRecordingTime"] == 12345
    assert recording.file_headers["endian"] == endian
    assert recording.file_headers["binary"]["Interval"] == 500
    assert recording.file_headers["textual"][0].startswith(b"C 1 CCS-passive test file")


def test_segy_traces_with_different_start_times_become_blocks(tmp_path: Path) -> None:
    import segyio

    path = tmp_path / "f.sgy"
    data = fh.make_segy(path, 4, 50, 500.0, "int32")
    with segyio.open(str(path), "r+", ignore_geometry=True) as f:
        f.header[1] = {segyio.TraceField.SecondOfMinute: 9}
        f.header[3] = {segyio.TraceField.SecondOfMinute: 9}
    blocks = formats.read(path).blocks
    assert [[t.index for t in b.traces] for b in blocks] == [[0, 2], [1, 3]]
    assert blocks[1].starttime_ns - blocks[0].starttime_ns == 1_000_000_000
    np.testing.assert_array_equal(blocks[1].data, data[[1, 3]])


def test_segy_with_more_than_32767_samples(tmp_path: Path) -> None:
    # ObsPy's SEG-Y check reads the sample count as signed 16-bit and rejects such files.
    path = tmp_path / "long.sgy"
    data = fh.make_segy(path, 2, 40000, 1000.0, "int16")
    np.testing.assert_array_equal(formats.read(path).blocks[0].data, data)


@pytest.mark.parametrize("endian", ["little", "big"])
def test_reads_su(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "f.su"
    data = fh.make_su(path, 4, 120, 500.0, endian=endian)
    recording = formats.read(path)
    [block] = recording.blocks
    assert recording.format == "SU"
    assert block.data.dtype == np.float32
    np.testing.assert_array_equal(block.data, data)
    assert (block.sampling_rate, block.starttime_ns) == (500.0, fh.SEGY_START_NS)
    assert block.traces[1].headers["GroupX"] == 1010


@pytest.mark.parametrize("dtype", ["int16", "int32", "float32"])
def test_reads_seg2_with_fractional_time_and_delay(tmp_path: Path, dtype: str) -> None:
    # ObsPy alone would put "06:07:08.123456" at midnight and ignore DELAY.
    path = tmp_path / "f.dat"
    data = fh.make_seg2(path, 3, 64, 4000.0, dtype, delay_s="0.0005")
    [block] = formats.read(path).blocks
    assert block.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(block.data, data)
    assert block.sampling_rate == 4000.0
    assert block.starttime_ns == fh.START_NS + 500_000
    assert block.traces[2].headers["CHANNEL_NUMBER"] == "3"


def test_reads_mseed_grouping_traces_by_start_rate_and_length(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    later = fh.START_NS + 4_000_000
    stream = fh.obspy_stream(
        ["XX.A.00.HHZ", "XX.B.00.HHZ", "XX.C.10.HHN"],
        200,
        250.0,
        starts=[fh.START_NS, later, fh.START_NS],
    )
    stream.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
    recording = formats.read(path)
    assert [(b.starttime_ns, [t.station for t in b.traces]) for b in recording.blocks] == [
        (fh.START_NS, ["A", "C"]),
        (later, ["B"]),
    ]
    meta = recording.blocks[0].traces[1]
    assert (meta.network, meta.station, meta.location, meta.channel) == ("XX", "C", "10", "HHN")
    assert recording.blocks[0].data.dtype == np.int32
    np.testing.assert_array_equal(recording.blocks[0].data[1], stream[2].data)


def test_reads_sac(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = _obspy_file(path, "SAC", ["XX.A.00.HHZ"], "float32")
    [block] = formats.read(path).blocks
    np.testing.assert_array_equal(block.data, data)
    assert (block.sampling_rate, block.starttime_ns) == (250.0, fh.START_NS)
    assert block.traces[0].channel == "HHZ"
    assert block.traces[0].headers["nvhdr"] == 6


def test_reads_gse2(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = _obspy_file(path, "GSE2", ["XX.A..HHZ", "XX.B..HHZ"])
    [block] = formats.read(path).blocks
    np.testing.assert_array_equal(block.data, data)
    assert block.data.dtype == np.int32
    assert block.starttime_ns == fh.START_NS // 1_000_000 * 1_000_000  # GSE2 carries ms
    assert [t.station for t in block.traces] == ["A", "B"]


# --- bad input: FormatError naming the file and the reason ---------------------------------


def _expect(path: Path, *reason: str) -> None:
    with pytest.raises(FormatError) as err:
        formats.read(path, "raw/snorre/bad.file")
    message = str(err.value)
    assert message.startswith("raw/snorre/bad.file: ")
    for word in reason:
        assert word in message


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e").write_bytes(b"")
    _expect(tmp_path / "e", "empty file")


def test_truncated_segy(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy(path, 3, 100, 1000.0, "int32")
    path.write_bytes(path.read_bytes()[:-100])
    _expect(path, "truncated", "not a whole number of 640-byte traces", "2 traces and 540 bytes")


def test_segy_headers_only(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy(path, 3, 100, 1000.0, "int32")
    path.write_bytes(path.read_bytes()[:3600])
    _expect(path, "truncated")


def test_unsupported_segy_sample_format(tmp_path: Path) -> None:
    path = tmp_path / "t"
    fh.make_segy(path, 3, 100, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3224:3226] = struct.pack(">H", 4)  # fixed point with gain: 4 bytes, obsolete
    path.write_bytes(bytes(raw))
    _expect(path, "unsupported SEG-Y sample format code 4")


def test_segy_rev2_announcing_more_extensions_than_the_file_holds_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t"
    fh.make_segy(path, 3, 100, 1000.0, "int32")
    raw = bytearray(path.read_bytes())
    raw[3500] = 2
    raw[3506:3510] = struct.pack(">I", 5)  # bytes 3507-3510: 5 extra 240-byte headers per trace
    path.write_bytes(bytes(raw))
    _expect(path, "trace header extensions")


def test_png_is_not_seismic_data(tmp_path: Path) -> None:
    path = tmp_path / "p.sgy"
    rng = np.random.default_rng(1)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + rng.integers(0, 256, 8000, dtype=np.uint8).tobytes())
    _expect(path, "not seismic data", "PNG")


def test_text_is_not_seismic_data(tmp_path: Path) -> None:
    path = tmp_path / "notes.mseed"
    path.write_text("station report\n" * 400)
    _expect(path, "not seismic data", "text file")


def test_broken_mseed3_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m3"
    path.write_bytes(b"MS\x03" + bytes(100))
    _expect(path, "unreadable miniSEED 3 file")


def test_library_errors_are_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "g"
    _obspy_file(path, "GSE2", ["XX.A..HHZ"])
    text = path.read_bytes()
    head, _, tail = text.partition(b"CHK2")
    path.write_bytes(head + b"CHK2 " + b"12345678" + tail[9:])
    _expect(path, "unreadable GSE2 file")
