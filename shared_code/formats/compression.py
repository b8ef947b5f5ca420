"""Compressed uploads: recognise gzip, bzip2, xz, single-file zip and single-file tar by
content, and decompress them, streaming, to a spool file that the readers then open as usual.

Fields compress files for transfer; the extension says nothing (a ``.sgy`` may be gzip, a
``.gz`` may not be), so only magic bytes decide:

* gzip ``1f 8b 08`` with the reserved flag bits clear (RFC 1952 §2.3.1: CM = 8 is deflate,
  "reserved FLG bits must be zero"); members may be concatenated (§2.2), and are all read.
* bzip2 ``BZh`` + block size ``1``-``9`` + the block magic ``31 41 59 26 53 59`` or the
  end-of-stream magic ``17 72 45 38 50 90`` (an empty stream); concatenated streams are read.
* xz ``fd 37 7a 58 5a 00`` (The .xz File Format, §2.1.1.1 Header Magic Bytes); concatenated
  streams and Stream Padding are read, in bounded decoder memory (:mod:`.xz`).
* zip ``PK 03 04`` (PKWARE APPNOTE 6.3.10, §4.3.7 local file header): exactly one member,
  not encrypted (general purpose bit 0, §4.4.4), not LZMA (method 14, unbounded memory).
* tar (``ustar`` at offset 257, or a v7 header whose checksum holds; POSIX.1-2001 pax):
  plain or inside one of the compressions above (``.tar.gz``), with exactly one regular file.
  ObsPy reads such archives too; one file per blob keeps one recording per blob.

Zip and tar ignore the same entries (directories, ``__MACOSX/``, ``._*`` AppleDouble files)
and examine at most :data:`.archives.MAX_ENTRIES` of them (:mod:`.archives`).

Refused, with the blob name and the reason: a zip or tar with several files (how many, the
first names), an empty or encrypted zip, a member in a method Python cannot read, an archive
inside the archive, a corrupt or truncated stream (where it broke), zstd, 7z and rar, and
decompression bombs.

Bombs: the spool lives on the share's ``staging/`` (beside the raw spool), so the harm of a
bomb is bytes written to the share and time spent. Waveform samples are noisy integers or
floats that deflate by 1.1-4x; the best real case is a file of padded or dead traces.
Output is refused once it passes both :data:`BOMB_FLOOR_BYTES` (any file up to 1 GiB is
taken, however well it compresses) and :data:`MAX_RATIO` times the compressed size (far
above any waveform file; gzip cannot exceed ~1032:1 on zeros, bzip2 and xz reach 10^5 and
more), or :data:`MAX_DECOMPRESSED_BYTES` in any case (a hard cap on the staging space one
upload may take, well beyond what one 10-minute function run decimates). Checked as the
output grows, so a bomb costs at most that many bytes, which are removed at once. Nested
archives (42.zip) are refused outright.

Memory: the decompressors read and write :data:`CHUNK_BYTES` at a time, xz's dictionary is
capped (:data:`.xz.MEMLIMIT_BYTES`) and archive metadata by its entry count, so memory stays
bounded whatever the sizes.

Errors: bad data (gzip.BadGzipFile, an OSError without errno as bz2 raises, zlib.error,
lzma.LZMAError, EOFError) is a FormatError; an OSError with an errno (EIO reading the spool
on the share) propagates unchanged, for the pipeline to retry as transient.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import logging
import lzma
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from shared_code.formats import archives
from shared_code.formats.errors import FormatError
from shared_code.formats.xz import MEMLIMIT_BYTES, XzReader
from shared_code.staging import keep_alive

log = logging.getLogger(__name__)

GZIP = "gzip"
BZIP2 = "bzip2"
XZ = "xz"
ZIP = "zip"
TAR = "tar"

#: Bytes copied at a time.
CHUNK_BYTES = 1 << 20
#: Decompressed bytes always accepted, however high the ratio.
BOMB_FLOOR_BYTES = 1 << 30
#: Decompressed / compressed bytes above which (past the floor) a file is a bomb.
MAX_RATIO = 100
#: Decompressed bytes never exceeded.
MAX_DECOMPRESSED_BYTES = 64 << 30

_UNSUPPORTED = {
    b"\x28\xb5\x2f\xfd": "zstd-compressed",
    b"7z\xbc\xaf\x27\x1c": "a 7z archive",
    b"Rar!\x1a\x07": "a RAR archive",
    b"PK\x05\x06": "an empty zip archive",
}
#: Bytes of a file's start looked at: magic numbers, and a tar's first member names.
_HEAD = 64 << 10


@dataclass(frozen=True)
class Limits:
    """The decompression-bomb guard (bytes); tests pass small ones."""

    floor_bytes: int = BOMB_FLOOR_BYTES
    ratio: float = MAX_RATIO
    max_bytes: int = MAX_DECOMPRESSED_BYTES

    def allowed(self, compressed_bytes: int) -> int:
        """Decompressed bytes allowed for ``compressed_bytes`` of input."""
        return min(self.max_bytes, max(self.floor_bytes, int(self.ratio * compressed_bytes)))


def sniff(head: bytes) -> str | None:
    """The compression of a file starting with ``head`` (its first bytes), or None."""
    if head[:3] == b"\x1f\x8b\x08" and len(head) > 3 and not head[3] & 0xE0:
        return GZIP
    if (
        head[:3] == b"BZh"
        and head[3:4] in b"123456789"
        and head[4:10] in (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")
    ):
        return BZIP2
    if head[:6] == b"\xfd7zXZ\x00":
        return XZ
    if head[:4] == b"PK\x03\x04":
        return ZIP
    return None


def describe(head: bytes) -> str | None:
    """What a compressed or archive file starting with ``head`` is, in words; or None."""
    kind = sniff(head)
    if kind:
        return f"{kind}-compressed data"
    for magic, what in _UNSUPPORTED.items():
        if head.startswith(magic):
            return what
    return "a tar archive" if _is_tar(head) else None


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    if head[257:262] == b"ustar":
        return True
    # A v7 header has no magic; its checksum (octal, bytes 148-155) is the sum of the header
    # bytes with the checksum field read as spaces.
    try:
        stored = int(head[148:156].replace(b"\0", b" ").strip() or b"x", 8)
    except ValueError:
        return False
    return stored == sum(head[:148]) + 8 * 32 + sum(head[156:512]) and head[0] != 0


@contextlib.contextmanager
def decompressed(
    path: Path, name: str, spool_dir: Path, limits: Limits | None = None
) -> Iterator[tuple[Path, str | None]]:
    """The file to read: ``(path, None)`` if it is not compressed; else ``(spool, kind)``,
    the decompressed content in a temporary file under ``spool_dir`` (removed on exit).

    ``name`` (the blob name) is what errors show; raises :class:`FormatError` for the
    refusals listed in the module docstring. ``path`` is only ever read.
    """
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    kind = sniff(head)
    with contextlib.ExitStack() as stack:
        readable = path
        if kind is not None:
            readable = stack.enter_context(_spool(spool_dir))
            with open(readable, "wb") as out:
                total = _decompress(path, kind, name, out, limits or Limits())
            log.info("%s: %s-compressed, %d -> %d bytes", name, kind, path.stat().st_size, total)
            if total == 0:
                raise FormatError(name, f"{kind}-compressed file holds no data (0 bytes)")
            with open(readable, "rb") as fh:
                head = fh.read(_HEAD)
        if _is_tar(head):
            member = stack.enter_context(_spool(spool_dir))
            with archives.tar_member(readable, name, kind) as src, open(member, "wb") as dst:
                head = src.read(_HEAD)
                _refuse_archive(head, name, "tar")
                dst.write(head)
                shutil.copyfileobj(src, dst, CHUNK_BYTES)
            kind = f"{kind}+{TAR}" if kind else TAR
            readable = member
        elif kind is None:
            _refuse_archive(head, name, "")
        yield readable, kind


@contextlib.contextmanager
def _spool(spool_dir: Path) -> Iterator[Path]:
    """A temporary file under ``spool_dir``, removed on exit."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="decompressed-", suffix=".part", dir=spool_dir)
    os.close(fd)
    spool = Path(tmp)
    try:
        # Touched while in use, so a sweep of staging/ never takes it for an orphan.
        with keep_alive(spool):
            yield spool
    finally:
        spool.unlink(missing_ok=True)


def _refuse_archive(head: bytes, name: str, inside: str) -> None:
    """Refuse a tar, an unsupported format or (``inside`` a kind) a nested compression."""
    what = describe(head)
    if what is None:
        return
    where = f" inside a {inside} file" if inside else ""
    if inside:
        raise FormatError(name, f"nested archive: {what}{where}; upload the waveform file itself")
    raise FormatError(name, f"{what}: not supported; upload it uncompressed or as gzip, "
                            "bzip2, xz or a single-file zip")  # fmt: skip


def _decompress(path: Path, kind: str, name: str, out: BinaryIO, limits: Limits) -> int:
    """Copy the decompressed content of ``path`` to ``out``; returns the bytes written."""
    size = path.stat().st_size
    allowed = limits.allowed(size)
    with contextlib.ExitStack() as stack:
        raw = stack.enter_context(open(path, "rb"))
        src: IO[bytes] | io.BufferedIOBase | XzReader
        if kind == ZIP:
            info, src = stack.enter_context(archives.zip_member(raw, name))
            if info.file_size > allowed:
                _bomb(name, kind, info.file_size, size, limits, declared=True)
        elif kind == GZIP:
            src = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        elif kind == BZIP2:
            src = stack.enter_context(bz2.BZ2File(raw))
        else:
            src = XzReader(raw)
        total = 0
        while True:
            try:
                chunk = src.read(CHUNK_BYTES)
            except lzma.LZMAError as exc:
                if "memory usage limit" in str(exc).lower():
                    raise FormatError(
                        name,
                        f"xz stream needs more than {MEMLIMIT_BYTES >> 20} MiB to decode (the "
                        "dictionary size its header declares); recompress it with xz -9 or "
                        "less",
                    ) from exc
                raise FormatError(name, _broken(kind, exc, total, raw.tell(), size)) from exc
            except OSError as exc:
                if exc.errno is not None:  # reading the spool failed (EIO, ...): transient
                    raise
                # gzip.BadGzipFile and bz2's "Invalid data stream": bad data, no errno.
                raise FormatError(name, _broken(kind, exc, total, raw.tell(), size)) from exc
            except (EOFError, zlib.error, zipfile.BadZipFile) as exc:
                raise FormatError(name, _broken(kind, exc, total, raw.tell(), size)) from exc
            if not chunk:
                break
            if total == 0 and not _is_tar(chunk[:_HEAD]):  # a .tar.gz is unpacked next
                _refuse_archive(chunk[:_HEAD], name, kind)
            total += len(chunk)
            if total > allowed:
                _bomb(name, kind, total, size, limits)
            out.write(chunk)
    return total


def _broken(kind: str, exc: BaseException, written: int, consumed: int, size: int) -> str:
    what = "truncated" if isinstance(exc, EOFError) else "corrupt"
    return (
        f"{what} {kind} stream: {type(exc).__name__}: {exc} (after {written} decompressed "
        f"bytes, near compressed byte {consumed} of {size})"
    )


def _bomb(
    name: str, kind: str, total: int, size: int, limits: Limits, *, declared: bool = False
) -> None:
    verb = "declares" if declared else "decompresses to more than"
    raise FormatError(
        name,
        f"{kind} decompression bomb refused: {size} bytes {verb} {total} bytes, past the "
        f"limit of {limits.allowed(size)} bytes (ratio {limits.ratio:g}:1 above "
        f"{limits.floor_bytes} bytes, at most {limits.max_bytes} bytes)",
    )
