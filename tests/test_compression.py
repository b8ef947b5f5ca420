"""Compressed uploads: real gzip/bzip2/xz/zip files of real inputs through the real decimate
and convert on a share directory; every refusal names the blob and the reason."""

from __future__ import annotations

import bz2
import errno
import gzip
import io
import json
import lzma
import os
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import obspy
import pytest
from obspy import read

from scripts.sample_data import array_record, write_mseed, write_segy
from shared_code import decimation_job
from shared_code.cli import main
from shared_code.formats import FormatError, archives, compression, streaming
from shared_code.formats.compression import Limits, decompressed, sniff
from shared_code.formats.xz import MEMLIMIT_BYTES

ROOT = Path(__file__).resolve().parent.parent
OBSPY_DATA = Path(obspy.__file__).parent / "io"


def _gzip_two_members(raw: bytes) -> bytes:
    # Concatenated members (RFC 1952 §2.2), as `cat a.gz b.gz` or pigz make.
    half = len(raw) // 2
    return gzip.compress(raw[:half]) + gzip.compress(raw[half:], compresslevel=1)


def _zip(raw: bytes, member: str = "data.bin", method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        zf.writestr("folder/", b"")  # a directory entry does not count as a file
        zf.writestr(f"folder/{member}", raw)
    return buf.getvalue()


COMPRESSORS = {
    "gzip": _gzip_two_members,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zip": _zip,
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, Path]]:
    """Real inputs, each with the field that decimates it: our sample SEG-Y and MiniSEED, and
    ObsPy's own MiniSEED, SEG-Y and GSE2 test files."""
    tmp = tmp_path_factory.mktemp("inputs")
    return {
        "segy": ("grane", write_segy(tmp / "a.sgy", array_record(3, 4.0), 1000.0)),
        "mseed": ("oseberg", write_mseed(tmp / "b.mseed", ["OSE01"], rate_hz=500.0, seconds=4.0)),
        "obspy-mseed": (
            "grane",
            OBSPY_DATA / "mseed/tests/data/BW.BGLD.__.EHE.D.2008.001.first_10_records",
        ),
        "obspy-segy": ("grane", OBSPY_DATA / "segy/tests/data/00001034.sgy_first_trace"),
        "obspy-gse2": ("grane", OBSPY_DATA / "gse2/tests/data/loc_RJOB20050831023349.z"),
    }


def _process(field: str, path: Path, share: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["process", "--field", field, "--output", str(share), str(path)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("kind", list(COMPRESSORS))
@pytest.mark.parametrize("which", ["segy", "mseed", "obspy-mseed", "obspy-segy", "obspy-gse2"])
def test_compressed_input_gives_what_the_plain_file_gives(
    inputs: dict[str, tuple[str, Path]],
    kind: str,
    which: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Decimated and converted from the compressed file (named .sgy/.mseed: the extension is
    never looked at), the MiniSEED holds the same traces, samples and times as from the
    plain file; the report says how it was compressed; the spool is gone afterwards."""
    field, plain = inputs[which]
    packed = tmp_path / plain.name  # same name: same share paths
    packed.write_bytes(COMPRESSORS[kind](plain.read_bytes()))
    assert sniff(packed.read_bytes()[:16]) == kind
    out_plain = _process(field, plain, tmp_path / "plain", capsys)
    out_packed = _process(field, packed, tmp_path / "packed", capsys)
    assert f"({kind}-compressed)" in out_packed and "compressed" not in out_plain
    (mseed_plain,) = (tmp_path / "plain/mseed").rglob("*.mseed")
    (mseed_packed,) = (tmp_path / "packed/mseed").rglob("*.mseed")
    assert mseed_packed.relative_to(tmp_path / "packed") == mseed_plain.relative_to(
        tmp_path / "plain"
    )
    a, b = read(str(mseed_plain)), read(str(mseed_packed))
    assert len(a) == len(b) > 0
    for ta, tb in zip(a, b, strict=True):
        assert ta.id == tb.id and ta.stats.starttime == tb.stats.starttime
        assert ta.stats.sampling_rate == tb.stats.sampling_rate
        np.testing.assert_array_equal(ta.data, tb.data)  # same bytes in: bit-identical out
    assert not list((tmp_path / "packed/staging").iterdir())
    assert not list((tmp_path / "packed/failed").rglob("*.json"))


# -- refusals ---------------------------------------------------------------------------------


def _refused(payload: bytes, tmp_path: Path, limits: Limits | None = None) -> str:
    path = tmp_path / "upload.sgy"
    path.write_bytes(payload)
    spool = tmp_path / "staging"
    with pytest.raises(FormatError) as info, decompressed(path, "snorre/upload.sgy", spool, limits):
        pass
    assert str(info.value).startswith("snorre/upload.sgy: ")
    assert not spool.exists() or not list(spool.iterdir())  # the spool is removed
    assert path.read_bytes() == payload  # the raw input is never modified
    return info.value.reason


@pytest.fixture(scope="module")
def segy_bytes(inputs: dict[str, tuple[str, Path]]) -> bytes:
    return inputs["segy"][1].read_bytes()


def test_zip_with_several_files_is_refused_with_count_and_names(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(5):
            zf.writestr(f"line_{i}.sgy", b"x" * 100)
        zf.writestr("__MACOSX/._line_0.sgy", b"resource fork")  # not counted
    reason = _refused(buf.getvalue(), tmp_path)
    assert "zip archive with 5 files (first: line_0.sgy, line_1.sgy, line_2.sgy)" in reason


def test_encrypted_zip_is_refused(tmp_path: Path, segy_bytes: bytes) -> None:
    # Python writes no encrypted zips: set the "encrypted" flag (APPNOTE §4.4.4, bit 0) in the
    # local header (offset 6) and the central directory entry (offset 8), as an encrypting
    # tool would.
    raw = bytearray(_zip(segy_bytes[:4000], method=zipfile.ZIP_STORED))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (at := raw.find(signature, start)) >= 0:
            raw[at + offset] |= 1
            start = at + 4
    assert "is encrypted (password-protected)" in _refused(bytes(raw), tmp_path)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_truncated_stream_is_refused_saying_where(
    kind: str, tmp_path: Path, segy_bytes: bytes
) -> None:
    packed = COMPRESSORS[kind](segy_bytes)
    reason = _refused(packed[: len(packed) // 2], tmp_path)
    assert reason.startswith(f"truncated {kind} stream")
    assert "decompressed bytes, near compressed byte" in reason


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zip"])
def test_corrupt_stream_is_refused(kind: str, tmp_path: Path, segy_bytes: bytes) -> None:
    packed = bytearray(COMPRESSORS[kind](segy_bytes))
    middle = len(packed) // 2
    packed[middle : middle + 64] = bytes(64)  # a zeroed block in the compressed data
    reason = _refused(bytes(packed), tmp_path)
    assert reason.startswith(f"corrupt {kind} stream") or "truncated" in reason, reason


def test_truncated_zip_is_refused(tmp_path: Path, segy_bytes: bytes) -> None:
    packed = _zip(segy_bytes)
    assert "corrupt or truncated zip archive" in _refused(packed[: len(packed) // 2], tmp_path)


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_archives_of_several_files_are_refused_naming_them(
    fmt: int, tmp_path: Path, segy_bytes: bytes
) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name in ("a.sgy", "b.sgy", "c.sgy", "d.sgy"):
            info = tarfile.TarInfo(name)
            info.size = 1000
            tar.addfile(info, io.BytesIO(segy_bytes[:1000]))
    plain = buf.getvalue()
    reason = _refused(plain, tmp_path)
    assert reason.startswith("a tar archive with 4 files (first: a.sgy, b.sgy, c.sgy)")
    reason = _refused(gzip.compress(plain), tmp_path)
    assert reason.startswith("a tar archive inside a gzip file with 4 files (first: a.sgy")


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("kind", [None, *COMPRESSORS])
def test_a_tar_of_one_file_is_unpacked(
    fmt: int, kind: str | None, tmp_path: Path, segy_bytes: bytes
) -> None:
    """Plain or compressed (.tar.gz, ...): the one regular file, byte for byte; directories
    and macOS AppleDouble files beside it do not count."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        tar.addfile(_dir("line"))
        for member, data in (
            ("line/._a.sgy", b"\0\5\x16\7 AppleDouble"),
            ("line/a.sgy", segy_bytes),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    payload = buf.getvalue() if kind is None else COMPRESSORS[kind](buf.getvalue())
    path = tmp_path / "upload.tar"
    path.write_bytes(payload)
    with decompressed(path, "snorre/upload.tar", tmp_path / "staging") as (readable, how):
        assert readable.read_bytes() == segy_bytes
        assert how == ("tar" if kind is None else f"{kind}+tar")
    assert not list((tmp_path / "staging").iterdir())


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def test_v7_tar_without_magic_is_recognised(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in ("old.sgy", "older.sgy"):
            info = tarfile.TarInfo(member)
            info.size = 10
            tar.addfile(info, io.BytesIO(b"0123456789"))
    raw = bytearray(buf.getvalue())
    raw[257:265] = bytes(8)  # no "ustar" magic: a v7 header, found by its checksum
    raw[148:156] = f"{sum(raw[:148]) + 256 + sum(raw[156:512]):06o}\0 ".encode()
    assert _refused(bytes(raw), tmp_path).startswith("a tar archive with 2 files")


def test_a_truncated_tar_is_refused(tmp_path: Path, segy_bytes: bytes) -> None:
    reason = _refused(_tar({"a.sgy": segy_bytes})[:5000], tmp_path)
    assert reason.startswith("corrupt or truncated tar archive")


def test_nested_archives_are_refused(tmp_path: Path, segy_bytes: bytes) -> None:
    reason = _refused(_zip(gzip.compress(segy_bytes)), tmp_path)
    assert reason.startswith("nested archive: gzip-compressed data inside a zip file")
    reason = _refused(gzip.compress(bz2.compress(segy_bytes)), tmp_path)
    assert reason.startswith("nested archive: bzip2-compressed data inside a gzip file")


@pytest.mark.parametrize(
    ("magic", "what"),
    [(b"\x28\xb5\x2f\xfd", "zstd-compressed"), (b"7z\xbc\xaf\x27\x1c", "a 7z archive")],
)
def test_unsupported_compressions_are_refused(magic: bytes, what: str, tmp_path: Path) -> None:
    assert _refused(magic + bytes(600), tmp_path).startswith(f"{what}: not supported")


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_decompression_bomb_is_stopped_at_the_limit(kind: str, tmp_path: Path) -> None:
    """4 MiB of zeros against a 256 KiB floor and a 100:1 ratio: refused, nothing left (the
    test stays small: this process's RSS is what other tests' children start from)."""
    zeros = bytes(4 << 20)
    # xz's default preset touches ~50 MB of encoder tables here; preset 1 decodes the same.
    bomb = lzma.compress(zeros, preset=1) if kind == "xz" else COMPRESSORS[kind](zeros)
    limits = Limits(floor_bytes=256 << 10, ratio=100, max_bytes=1 << 30)
    reason = _refused(bomb, tmp_path, limits)
    assert f"{kind} decompression bomb refused: {len(bomb)} bytes" in reason


def test_bomb_limits_spare_real_waveforms(tmp_path: Path, segy_bytes: bytes) -> None:
    """Real samples compress far below the ratio: accepted even with a floor of 0 bytes."""
    path = tmp_path / "a.sgy"
    path.write_bytes(gzip.compress(segy_bytes, compresslevel=9))
    limits = Limits(floor_bytes=0, ratio=100, max_bytes=1 << 30)
    with decompressed(path, "grane/a.sgy", tmp_path / "staging", limits) as (spool, kind):
        assert kind == "gzip" and spool.read_bytes() == segy_bytes
        assert spool.parent == tmp_path / "staging"
    assert not spool.exists()


def test_plain_files_are_read_in_place(tmp_path: Path, segy_bytes: bytes) -> None:
    path = tmp_path / "a.sgy.gz"  # the extension says gzip; the content does not
    path.write_bytes(segy_bytes)
    with decompressed(path, "grane/a.sgy.gz", tmp_path / "staging") as (readable, kind):
        assert readable == path and kind is None
    assert not (tmp_path / "staging").exists()


# -- bounded memory --------------------------------------------------------------------------

_BUILD = r"""
import gzip, sys
from pathlib import Path
from benchmarks.bench_pipeline import write_synthetic_segy

plain, packed, channels, samples = Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:5])
write_synthetic_segy(plain, channels=channels, samples=samples, rate_hz=1000.0,
                     progress=lambda _msg: None)
with open(plain, "rb") as src, gzip.open(packed, "wb", compresslevel=1) as dst:
    while chunk := src.read(1 << 22):
        dst.write(chunk)
print(plain.stat().st_size)
plain.unlink()
"""

_DECIMATE = r"""
import json, sys
from pathlib import Path
import dataclasses
from shared_code.fields import load_fields
from shared_code.messages import SourceBlob
from shared_code.stages import decimate_file
import numpy, obspy, segyio, scipy  # the libraries a stage loads, before the baseline

def vm(key):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key))

path, share = Path(sys.argv[1]), Path(sys.argv[2])
baseline = vm("VmRSS:")
# 4000 traces: a field with 1000 four-component stations (snorre is configured with 100).
cfg = dataclasses.replace(load_fields(Path("config/fields.toml")).get("snorre"), station_count=1000)
source = SourceBlob(url="file://x", container="local", name="snorre/big.sgy", etag='"1"',
                    event_id="e", event_time="2026-11-23T12:00:00+00:00")
_, report = decimate_file(path, "snorre/big.sgy", share, cfg, source)
print(json.dumps({"hwm_mb": vm("VmHWM:") / 1024, "baseline_mb": baseline / 1024,
                  "compression": report.compression,
                  "samples_in": report.samples_in, "traces": report.traces}))
"""


def test_a_compressed_file_far_larger_than_memory_decimates_in_bounded_memory(
    tmp_path: Path,
) -> None:
    """A ~480 MB SEG-Y, gzipped, decimated by a fresh process: its peak RSS (VmHWM, which
    unlike ru_maxrss does not start from the parent's) stays a fraction of the decompressed
    size."""
    # Built in a child too: the test process's own RSS must not grow (a child's ru_maxrss,
    # which other tests read, starts from its parent's).
    channels, samples = 4000, 30000  # 4000 × (240 + 120 000) bytes ≈ 481 MB
    packed = tmp_path / "big.sgy.upload"
    built = subprocess.run(
        [sys.executable, "-c", _BUILD, str(tmp_path / "big.sgy"), str(packed), str(channels),
         str(samples)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    decompressed_size = int(built.stdout.strip().splitlines()[-1])
    share = tmp_path / "share"
    out = subprocess.run(
        [sys.executable, "-c", _DECIMATE, str(packed), str(share)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    report = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS {report['hwm_mb']:.0f} MB for {decompressed_size / 2**20:.0f} MiB gzip input")
    assert report["compression"] == "gzip"
    assert report["traces"] == channels and report["samples_in"] == channels * samples
    # The working memory the modules declare: a chunk of traces (decimation_job), a read
    # window (formats.streaming), a decompression chunk; twice, for the float64 work copies
    # and the output rows. The decompressed file is 3× that and more.
    budget = 2 * (decimation_job.CHUNK_BYTES + streaming.CHUNK_BYTES + compression.CHUNK_BYTES)
    assert decompressed_size > 3 * budget
    assert (report["hwm_mb"] - report["baseline_mb"]) * 2**20 < budget
    assert not list((share / "staging").iterdir())


# -- hostile archives and streams (bounded memory, named errors) ------------------------------


def test_a_tar_of_more_entries_than_the_cap_is_refused(tmp_path: Path) -> None:
    """MAX_ENTRIES + 1 empty directory headers (5 MB of tar, a few kB gzipped): refused by the
    count, before the headers pile up (getmembers() kept them all: 262 MB for 300 000)."""
    header = _dir("d/").tobuf(format=tarfile.USTAR_FORMAT)
    bomb = gzip.compress(header * (archives.MAX_ENTRIES + 1) + bytes(1024))
    reason = _refused(bomb, tmp_path)
    assert reason.startswith(
        f"a tar archive inside a gzip file with more than {archives.MAX_ENTRIES} entries"
    )


def test_a_tar_whose_pax_record_passes_the_header_budget_is_refused_before_reading_it(
    tmp_path: Path, segy_bytes: bytes
) -> None:
    """A pax header (POSIX.1-2001 'x' typeflag) declaring a record larger than
    MAX_HEADER_BYTES before a real file: tarfile would read it whole into memory (one read of
    its size) and keep it with the member; refused before that read."""
    value = b"x" * archives.MAX_HEADER_BYTES
    body = b" comment=" + value + b"\n"
    digits = len(str(len(body)))
    length = len(body) + digits + (len(str(len(body) + digits)) > digits)
    record = str(length).encode() + body  # "<length> <key>=<value>\n", length counting itself
    pax = tarfile.TarInfo("PaxHeader/a.sgy")
    pax.type, pax.size = tarfile.XHDTYPE, len(record)
    padding = bytes(-len(record) % 512)
    member = _tar({"a.sgy": segy_bytes[:4000]})
    bomb = gzip.compress(pax.tobuf(format=tarfile.USTAR_FORMAT) + record + padding + member)
    del value, body, record
    reason = _refused(bomb, tmp_path)
    assert reason.startswith(
        "a tar archive inside a gzip file whose headers (names, pax records, sparse maps) pass "
        f"{archives.MAX_HEADER_BYTES} bytes"
    )


def _eocd_at(raw: bytes) -> int:
    at = raw.rfind(b"PK\x05\x06")
    assert at == len(raw) - 22  # no comment: the end record closes the file
    return at


def test_a_zip_declaring_more_entries_than_the_cap_is_refused_before_reading_them(
    tmp_path: Path,
) -> None:
    raw = bytearray(_zip(b"x" * 100))
    at = _eocd_at(bytes(raw))
    # APPNOTE §4.3.16: total entries at offset 10 (2 bytes).
    raw[at + 10 : at + 12] = struct.pack("<H", archives.MAX_ENTRIES + 1)
    reason = _refused(bytes(raw), tmp_path)
    assert f"declares {archives.MAX_ENTRIES + 1} entries" in reason


def test_a_zip64_end_record_declaring_too_many_entries_is_refused(tmp_path: Path) -> None:
    """The count in a zip64 end record (§4.3.14) before its locator (§4.3.15), as zipfile reads
    it, is checked too; and a huge central directory size alone is refused."""
    raw = _zip(b"x" * 100)
    at = _eocd_at(raw)
    eocd = bytearray(raw[at:])
    cd_bytes, cd_offset = struct.unpack_from("<LL", eocd, 12)
    record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 2, 2**40, cd_bytes, cd_offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    eocd[8:12] = b"\xff\xff\xff\xff"  # "see the zip64 record"
    reason = _refused(raw[:at] + record + locator + bytes(eocd), tmp_path)
    assert f"declares {2**40} entries" in reason
    big = bytearray(raw)
    big[at + 12 : at + 16] = struct.pack("<L", archives.MAX_CENTRAL_DIRECTORY_BYTES + 1)
    assert f"in {archives.MAX_CENTRAL_DIRECTORY_BYTES + 1} bytes" in _refused(bytes(big), tmp_path)


def _xz_declaring_dictionary(data: bytes, props: int) -> bytes:
    """xz of ``data`` whose block header declares LZMA2 dictionary ``props`` (§5.3.1: 39 is
    3 GiB), with the header's CRC32 recomputed: what a hostile encoder writes."""
    raw = bytearray(lzma.compress(data, preset=0))
    header = 12  # stream header (§2.1.1); the block header follows (§3.1)
    size = (raw[header] + 1) * 4
    assert raw[header + 2 : header + 4] == b"\x21\x01"  # filter LZMA2, 1 property byte
    raw[header + 4] = props
    raw[header + size - 4 : header + size] = struct.pack(
        "<L", zlib.crc32(raw[header : header + size - 4])
    )
    return bytes(raw)


def test_an_xz_declaring_a_huge_dictionary_is_refused_without_allocating_it(
    tmp_path: Path,
) -> None:
    bomb = _xz_declaring_dictionary(b"seismic" * 1000, 39)
    with pytest.raises(lzma.LZMAError):  # the same header at a smaller size decodes: only
        lzma.decompress(bomb, memlimit=1 << 20)  # the dictionary is wrong with it
    assert lzma.decompress(_xz_declaring_dictionary(b"seismic" * 1000, 20)) == b"seismic" * 1000
    reason = _refused(bomb, tmp_path)
    assert reason.startswith(f"xz stream needs more than {MEMLIMIT_BYTES >> 20} MiB to decode")


def test_xz_streams_are_read_across_stream_padding(tmp_path: Path, segy_bytes: bytes) -> None:
    """Two streams with Stream Padding (§2.2) between and after them, as `xz -d` reads them
    (LZMAFile stops at the padding); trailing non-xz data is ignored, as LZMAFile does."""
    half = len(segy_bytes) // 2
    packed = (
        lzma.compress(segy_bytes[:half]) + bytes(8) + lzma.compress(segy_bytes[half:])
    ) + bytes(4)
    for payload in (packed, packed + b"trailing junk"):
        path = tmp_path / "a.sgy"
        path.write_bytes(payload)
        with decompressed(path, "grane/a.sgy", tmp_path / "staging") as (spool, kind):
            assert kind == "xz" and spool.read_bytes() == segy_bytes


def test_an_lzma_zip_member_is_refused(tmp_path: Path, segy_bytes: bytes) -> None:
    reason = _refused(_zip(segy_bytes[:4000], method=zipfile.ZIP_LZMA), tmp_path)
    assert "uses the LZMA method (14)" in reason


def _patch_zip(raw: bytes, local: tuple[int, bytes], central: tuple[int, bytes]) -> bytes:
    """``raw`` with bytes replaced at an offset in the local headers (§4.3.7) and the central
    directory entries (§4.3.12) of every member."""
    out = bytearray(raw)
    for signature, (offset, value) in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = 0
        while (at := out.find(signature, start)) >= 0:
            out[at + offset : at + offset + len(value)] = value
            start = at + 4
    return bytes(out)


def test_zip_members_that_cannot_be_opened_are_refused_by_name(
    tmp_path: Path, segy_bytes: bytes
) -> None:
    stored = _zip(segy_bytes[:4000], member="a.sgy", method=zipfile.ZIP_STORED)
    # Method 9, deflate64 (APPNOTE §4.4.5), at offset 8 of the local and 10 of the central
    # header: zipfile raised a bare NotImplementedError for it.
    deflate64 = _patch_zip(stored, (8, b"\x09\x00"), (10, b"\x09\x00"))
    reason = _refused(deflate64, tmp_path)
    assert reason.startswith("zip member 'folder/a.sgy' cannot be read: ")
    assert "compression method is not supported" in reason
    # A local header naming another file than the central directory (bare BadZipFile).
    at = stored.rfind(b"PK\x03\x04")
    lying = stored[:at] + stored[at:].replace(b"folder/a.sgy", b"folder/b.sgy", 1)
    reason = _refused(lying, tmp_path)
    assert reason.startswith("zip member 'folder/a.sgy' cannot be read: File name in directory")


def test_zip_ignores_appledouble_files_as_tar_does(tmp_path: Path, segy_bytes: bytes) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.sgy", segy_bytes)
        zf.writestr("._x.sgy", b"\0\5\x16\7 AppleDouble")
        zf.writestr("__MACOSX/._x.sgy", b"\0\5\x16\7 AppleDouble")
    path = tmp_path / "x.zip"
    path.write_bytes(buf.getvalue())
    with decompressed(path, "grane/x.zip", tmp_path / "staging") as (spool, kind):
        assert kind == "zip" and spool.read_bytes() == segy_bytes


class _FailingDisk(io.FileIO):
    """A file whose reads touching its middle fail, as a failing disk or share does (EIO);
    its start (sniffed) and end (a zip's end records) read fine."""

    def readinto(self, buffer: Any) -> int | None:
        if self.tell() < 300_000 and self.tell() + len(buffer) > 150_000:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return super().readinto(buffer)


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_an_io_error_reading_the_upload_propagates_as_transient(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO while decompressing is not a "corrupt stream" refusal (which is permanent): it
    propagates as the OSError it is, for the pipeline to retry."""
    payload = COMPRESSORS[kind](np.random.default_rng(0).bytes(400_000))
    path = tmp_path / "upload.sgy"
    path.write_bytes(payload)

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if Path(file) == path and mode == "rb":
            return io.BufferedReader(_FailingDisk(file))
        return open(file, mode, *args, **kwargs)

    monkeypatch.setattr(compression, "open", failing_open, raising=False)
    with pytest.raises(OSError) as info, decompressed(path, "snorre/upload.sgy", tmp_path / "s"):
        pass
    assert not isinstance(info.value, FormatError) and info.value.errno == errno.EIO
    assert not list((tmp_path / "s").iterdir())
