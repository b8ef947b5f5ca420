"""SEG-Y binary headers of rev 0, 1, 2.0 and 2.1, sample interval words, and the refusals.

Files are built by hand per the standard (bytes as the standard numbers them, 1-based), and
by segyio where it can write them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import FormatError
from tests import formats_helpers as fh

NAME = "raw/oseberg/line.sgy"


def _by_hand(
    path: Path,
    *,
    revision: tuple[int, int],
    endian: str = "big",
    extensions: int = 0,
    survey_type: int = 0,
    n_traces: int = 3,
    n_samples: int = 50,
    binary_dt: int = 2000,
    trace_dt: int = 2000,
) -> np.ndarray:
    """A SEG-Y file of int32 samples: textual header (EBCDIC), binary header with the
    revision's words, then records of 240 × (1 + extensions) header bytes + samples."""
    order = ">" if endian == "big" else "<"
    binary = bytearray(400)
    struct.pack_into(f"{order}hhHH", binary, 16, binary_dt, 0, n_samples, 0)  # 3217-3224
    struct.pack_into(f"{order}H", binary, 24, 2)  # 3225-3226: int32
    major, minor = revision
    if major >= 2:
        binary[300], binary[301] = major, minor  # 3501, 3502
        struct.pack_into(f"{order}I", binary, 96, 0x01020304)  # 3297-3300
        struct.pack_into(f"{order}h", binary, 302, 1)  # 3503-3504: fixed length
        if revision >= (2, 1):  # 3507-3508 count, 3509-3510 survey type
            struct.pack_into(f"{order}Hh", binary, 306, extensions, survey_type)
        else:  # 3507-3510 count
            struct.pack_into(f"{order}i", binary, 306, extensions)
    elif major == 1:
        struct.pack_into(">H", binary, 300, 0x0100)  # rev 1: 0x0100 as written big-endian
    text = "C 1 by hand".ljust(3200).encode("cp037")
    rng = np.random.default_rng(0)
    data = rng.integers(-(2**31), 2**31 - 1, (n_traces, n_samples), dtype=np.int64).astype(">i4")
    records = b""
    for i in range(n_traces):
        header = bytearray(240)
        struct.pack_into(f"{order}i", header, 0, i + 1)
        struct.pack_into(f"{order}Hh", header, 114, n_samples, trace_dt)
        struct.pack_into(f"{order}hhhhhh", header, 156, 2024, 65, 6, 7, 8, 4)
        ext = b""
        if extensions:
            ext1 = bytearray(240)
            struct.pack_into(f"{order}I", ext1, 136, n_samples)
            struct.pack_into(f"{order}H", ext1, 156, extensions)
            ext1[232:240] = b"SEG00001"
            ext = bytes(ext1) + bytes(240 * (extensions - 1))
        records += bytes(header) + ext + data[i].astype(order + "i4").tobytes()
    path.write_bytes(text + bytes(binary) + records)
    return data.astype(np.int32)


#: (revision, extensions, survey type, byte order): rev 0/1 are big-endian only.
REVISIONS = [((0, 0), 0, 0, "big"), ((1, 0), 0, 0, "big")] + [
    (revision, extensions, survey, endian)
    for revision, extensions, survey in [
        ((2, 0), 0, 0), ((2, 0), 2, 0), ((2, 1), 1, 0), ((2, 1), 3, 2), ((2, 1), 0, 3)
    ]
    for endian in ("big", "little")
]  # fmt: skip


@pytest.mark.parametrize(("revision", "extensions", "survey_type", "endian"), REVISIONS)
def test_revisions_by_hand(
    tmp_path: Path, revision: tuple[int, int], extensions: int, survey_type: int, endian: str
) -> None:
    path = tmp_path / "t"
    data = _by_hand(
        path, revision=revision, endian=endian, extensions=extensions, survey_type=survey_type
    )
    recording = formats.read(path, NAME)
    [block] = recording.blocks
    np.testing.assert_array_equal(block.data, data)
    assert block.sampling_rate == 500.0
    assert recording.file_headers.get("trace_header_extensions", 0) == extensions
    assert recording.file_headers["endian"] == endian


def test_rev21_count_is_not_read_as_rev20_int32(tmp_path: Path) -> None:
    """The issue's file: rev 2.1, one extension, survey type 0 (big-endian): bytes 3507-3510
    read 0x00010000 = 65536 as a rev 2.0 int32."""
    path = tmp_path / "t"
    _by_hand(path, revision=(2, 1), extensions=1)
    raw = path.read_bytes()
    assert struct.unpack_from(">i", raw, 3506)[0] == 65536
    [block] = formats.read(path, NAME).blocks
    assert len(block.traces) == 3


@pytest.mark.parametrize("endian", ["big", "little"])
def test_segyio_made_rev1_files(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "t"
    data = fh.make_segy(path, 4, 100, 500.0, "int32", endian=endian)
    [block] = formats.read(path, NAME).blocks
    np.testing.assert_array_equal(block.data, data)


@pytest.mark.parametrize("binary_dt", [-2, 0])
def test_invalid_binary_interval_falls_back_to_trace_header(tmp_path: Path, binary_dt: int) -> None:
    """-2 in binary bytes 3217-3218 is invalid (two's complement), not 65534 µs: the trace
    header's 4000 µs is used."""
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0), binary_dt=binary_dt, trace_dt=4000)
    [block] = formats.read(path, NAME).blocks
    assert block.sampling_rate == 250.0


def test_binary_interval_wins_when_both_are_valid(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0), binary_dt=2000, trace_dt=4000)
    assert formats.read(path, NAME).blocks[0].sampling_rate == 500.0


def test_no_valid_interval_is_refused_with_every_word(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0), binary_dt=-2, trace_dt=-4)
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    message = str(err.value)
    assert message.startswith(f"{NAME}: no valid sample interval: ")
    assert "binary header bytes 3217-3218 hold -2" in message
    assert "trace 0 bytes 117-118 hold -4" in message


def test_binary_count_that_misfits_the_file_gives_way(tmp_path: Path) -> None:
    """A binary sample count (3221-3222) that gives no whole number of traces yields to the
    trace header's (115-116) when that one does."""
    path = tmp_path / "t"
    data = _by_hand(path, revision=(1, 0), n_samples=50)
    raw = bytearray(path.read_bytes())
    raw[3220:3222] = struct.pack(">H", 51)
    path.write_bytes(bytes(raw))
    [block] = formats.read(path, NAME).blocks
    np.testing.assert_array_equal(block.data, data)


def test_garbage_binary_header_names_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0))
    raw = bytearray(path.read_bytes())
    raw[3224:3226] = b"\x30\x39"  # 12345 big-endian, 14640 little-endian
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    assert str(err.value).startswith(
        f"{NAME}: binary header bytes 3225-3226 hold 12345 (big-endian), not a SEG-Y sample "
        "format code"
    )


def test_no_traces(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0))
    path.write_bytes(path.read_bytes()[:3600])
    with pytest.raises(FormatError, match=rf"^{NAME}: no traces: the file ends at byte 3600"):
        formats.read(path, NAME)


def test_truncated_names_offsets_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0), n_samples=50)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    message = str(err.value)
    # The trace that is cut, where it starts and its header's count; then the fixed-length view.
    assert message.startswith(
        f"{NAME}: truncated SEG-Y: trace 2 at byte 4480 has 50 samples (trace header bytes "
        "115-116), so it ends at byte 4920, past the end of the file at byte 4917; "
    )
    assert "1317 bytes after the file headers (from byte 3600)" in message
    assert "440-byte traces" in message
    assert "binary header bytes 3221-3222 hold 50" in message
    assert "2 traces and 437 bytes over" in message


def test_no_sample_count(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0), n_samples=50)
    raw = bytearray(path.read_bytes())
    raw[3220:3222] = bytes(2)
    for i in range(3):
        raw[3600 + i * 440 + 114 : 3600 + i * 440 + 116] = bytes(2)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match=rf"^{NAME}: no sample count: .*3221-3222 hold 0"):
        formats.read(path, NAME)


def test_rev20_extension_count_beyond_the_file(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(2, 0), extensions=1)
    raw = bytearray(path.read_bytes())
    raw[3506:3510] = struct.pack(">i", 70000)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as err:
        formats.read(path, NAME)
    assert "rev 2.0 binary header bytes 3507-3510 (rev 2.0, 32 bits) announces 70000" in str(
        err.value
    )


@pytest.mark.parametrize("endian", ["little", "big"])
def test_su_negative_interval_is_refused(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "t.su"
    fh.make_su(path, 3, 100, 1000.0, endian=endian)
    raw = bytearray(path.read_bytes())
    order = "<" if endian == "little" else ">"
    for i in range(3):
        struct.pack_into(f"{order}h", raw, i * (240 + 400) + 116, -2)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as err:
        formats.read(path, "raw/x.su")
    assert str(err.value) == (
        f"raw/x.su: SU trace 0 bytes 117-118 (dt) hold -2 µs ({endian}-endian): not a valid "
        "sample interval"
    )


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("minor", [0, 1])
def test_segyio_made_rev2_files(tmp_path: Path, endian: str, minor: int) -> None:
    """segyio writes the rev 2 major and minor bytes (3501, 3502) but not bytes 3507-3510:
    put survey type 3 at 3509-3510 by hand. Rev 2.1 reads it as the survey type (no trace
    header extensions); rev 2.0 reads bytes 3507-3510 as a count of 3 and refuses it, naming
    the word."""
    import segyio

    path = tmp_path / "t"
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.endian = 2, list(range(20)), 2, endian
    data = np.arange(40, dtype=np.int32).reshape(2, 20) - 20
    with segyio.create(str(path), spec) as f:
        f.bin.update(
            {
                segyio.BinField.Interval: 1000,
                segyio.BinField.SEGYRevision: 2,
                segyio.BinField.SEGYRevisionMinor: minor,
            }
        )
        for i in range(2):
            f.header[i] = {segyio.TraceField.TRACE_SAMPLE_INTERVAL: 1000}
            f.trace[i] = data[i]
    raw = bytearray(path.read_bytes())
    # segyio writes the two revision bytes as one 16-bit word in the file's byte order.
    assert raw[3500:3502] == (bytes([2, minor]) if endian == "big" else bytes([minor, 2]))
    struct.pack_into(">h" if endian == "big" else "<h", raw, 3508, 3)
    path.write_bytes(bytes(raw))
    if minor == 1:
        recording = formats.read(path, NAME)
        np.testing.assert_array_equal(recording.blocks[0].data, data)
        assert "trace_header_extensions" not in recording.file_headers
    else:
        with pytest.raises(FormatError, match=r"bytes 3507-3510 \(rev 2.0, 32 bits\) announces"):
            formats.read(path, NAME)


def test_trace_header_interval_word_is_signed(tmp_path: Path) -> None:
    path = tmp_path / "t"
    _by_hand(path, revision=(1, 0), binary_dt=2000, trace_dt=-4)
    [block] = formats.read(path, NAME).blocks
    assert block.sampling_rate == 500.0
    assert block.traces[0].headers["TRACE_SAMPLE_INTERVAL"] == -4  # not 65532
