"""Single-file archives: which member of a zip or tar upload is the waveform file, opened as a
stream, with the archive's own metadata read in bounded memory.

Both kinds ignore the same entries (:func:`ignored`): directories, macOS ``__MACOSX/``
resource forks and ``._*`` AppleDouble files, which Finder's "Compress" and macOS tar add
beside the real file. Exactly one file must remain.

Metadata is bounded by :data:`MAX_ENTRIES`: tarfile keeps every header it has read and
zipfile reads the whole central directory into ``ZipInfo`` objects, so an archive of a few
hundred thousand empty entries (1.4 MB as a .tar.gz for 300 000) costs hundreds of MB of
memory before anything is refused. A tar is walked header by header and refused past the
cap; a zip's entry count and central-directory size are read from its end records first.
"""

from __future__ import annotations

import contextlib
import io
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from shared_code.formats.errors import FormatError

#: Archive entries (files, directories, links, ...) examined at most. An upload is one
#: waveform file, perhaps inside a few directories beside macOS ``._*`` files; an archive with
#: more entries than this is refused either way, and the cap keeps the headers held in memory
#: to a few MB (a tarfile.TarInfo or zipfile.ZipInfo is ~0.5 kB).
MAX_ENTRIES = 10_000
#: Bytes of zip central directory read at most: :data:`MAX_ENTRIES` entries of 46 fixed bytes
#: (APPNOTE §4.3.12) with names of ~60 characters. zipfile reads it whole, and parses it by
#: size rather than by the declared count, so this bounds the entries it builds too.
MAX_CENTRAL_DIRECTORY_BYTES = 1 << 20
#: Bytes of tar headers parsed at most: 512-byte headers plus pax records, GNU long names and
#: sparse maps, which tarfile reads whole (a pax header is one ``read(size)``) and keeps with
#: each member. :data:`MAX_ENTRIES` entries with pax records of ~300 bytes fit.
MAX_HEADER_BYTES = 8 << 20

# PKWARE APPNOTE 6.3.10: end of central directory record (§4.3.16, 22 bytes + comment of at
# most 0xFFFF bytes), zip64 end of central directory locator (§4.3.15, 20 bytes) and record
# (§4.3.14, 56 bytes without extensible data).
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_EOCD_MAGIC = b"PK\x05\x06"


def ignored(name: str, is_dir: bool) -> bool:
    """True for an archive entry that is not a candidate waveform file: a directory, anything
    under ``__MACOSX/`` or a ``._*`` AppleDouble file (at any depth)."""
    path = PurePosixPath(name)
    return is_dir or path.parts[:1] == ("__MACOSX",) or path.name.startswith("._")


def _several(kind: str, count: int, first: list[str]) -> str:
    listed = f" (first: {', '.join(first)})" if first else ""
    return f"{kind} with {count} files{listed}: upload one waveform file per blob"


# -- zip --------------------------------------------------------------------------------------


def _central_directory(raw: BinaryIO) -> tuple[int, int] | None:
    """``(entries, bytes)`` of a zip's central directory as its end records declare them (the
    larger of the plain and zip64 values), or None without an end record (zipfile then
    refuses the file itself). Found where CPython 3.11's ``zipfile._EndRecData`` looks: at the
    very end, else the last signature within a maximal comment's reach; the zip64 record is
    read just before its locator, just before the end record, as ``_EndRecData64`` does."""
    size = raw.seek(0, 2)
    start = max(0, size - _EOCD.size - 0xFFFF - _ZIP64_LOCATOR.size - _ZIP64_EOCD.size)
    raw.seek(start)
    tail = raw.read()
    at = len(tail) - _EOCD.size
    if at < 0:
        return None
    if tail[at : at + 4] != _EOCD_MAGIC or tail[-2:] != b"\0\0":  # not there: a comment
        at = tail.rfind(_EOCD_MAGIC)
        if at < 0 or len(tail) - at < _EOCD.size:
            return None
    *_, entries, cd_bytes, _, _ = _EOCD.unpack_from(tail, at)
    locator = at - _ZIP64_LOCATOR.size
    record = locator - _ZIP64_EOCD.size
    if record >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        fields = _ZIP64_EOCD.unpack_from(tail, record)
        if fields[0] == b"PK\x06\x06":
            entries, cd_bytes = max(entries, fields[7]), max(cd_bytes, fields[8])
    return entries, cd_bytes


@contextlib.contextmanager
def zip_member(raw: BinaryIO, name: str) -> Iterator[tuple[zipfile.ZipInfo, IO[bytes]]]:
    """The one waveform member of the zip ``raw`` and its decompressed stream; a FormatError
    naming ``name`` when there is not exactly one, or it cannot be read."""
    declared = _central_directory(raw)
    if declared is not None and (
        declared[0] > MAX_ENTRIES or declared[1] > MAX_CENTRAL_DIRECTORY_BYTES
    ):
        raise FormatError(
            name,
            f"zip archive whose central directory declares {declared[0]} entries in "
            f"{declared[1]} bytes, past the {MAX_ENTRIES} entries or "
            f"{MAX_CENTRAL_DIRECTORY_BYTES} bytes examined: upload one waveform file per blob",
        )
    raw.seek(0)
    try:
        archive = zipfile.ZipFile(raw)
    except zipfile.BadZipFile as exc:
        # The central directory sits at the end: a truncated zip loses it.
        raise FormatError(
            name, f"corrupt or truncated zip archive (no readable central directory: {exc})"
        ) from exc
    with archive:
        info = _one_member(archive, name)
        if info.compress_type == zipfile.ZIP_LZMA:
            # zipfile decodes it with a FORMAT_RAW LZMADecompressor, which takes no memory
            # limit, and the dictionary size (up to 4 GiB) comes from the member's header.
            raise FormatError(
                name,
                f"zip member {info.filename!r} uses the LZMA method (14), whose decoder "
                "memory cannot be bounded; zip it with deflate or upload it as .xz",
            )
        try:
            # Reads the local header: a method zipfile lacks (deflate64, which Windows
            # Explorer writes for large files) or a local header disagreeing with the
            # central directory fails here, before any data.
            src = archive.open(info)
        except (NotImplementedError, zipfile.BadZipFile) as exc:
            raise FormatError(name, f"zip member {info.filename!r} cannot be read: {exc}") from exc
        with src:
            yield info, src


def _one_member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    members = [i for i in archive.infolist() if not ignored(i.filename, i.is_dir())]
    if not members:
        raise FormatError(name, "zip archive holds no file")
    if len(members) > 1:
        first = [i.filename for i in members[:3]]
        raise FormatError(name, _several("zip archive", len(members), first))
    info = members[0]
    if info.flag_bits & 0x1:
        raise FormatError(name, f"zip member {info.filename!r} is encrypted (password-protected)")
    return info


# -- tar --------------------------------------------------------------------------------------


class _HeaderBudget(io.FileIO):
    """The tar file for tarfile, refusing reads past :data:`MAX_HEADER_BYTES` in all while
    ``budget`` is set (while headers are parsed); before reading, so a header declaring
    1 GiB of pax records is refused without reading it."""

    def __init__(self, path: Path, name: str, refuse: str) -> None:
        super().__init__(path, "rb")
        self.budget: int | None = MAX_HEADER_BYTES
        self._blob = name
        self._refuse = refuse

    def read(self, size: int | None = -1, /) -> bytes:
        if self.budget is not None:
            if size is None or size < 0 or size > self.budget:
                raise FormatError(self._blob, self._refuse)
            self.budget -= size
        return super().read(size)


@contextlib.contextmanager
def tar_member(path: Path, name: str, inside: str | None) -> Iterator[IO[bytes]]:
    """The data of the one regular file of the tar archive ``path`` (``inside`` the
    compression it came out of, for messages); a FormatError naming ``name`` otherwise,
    including a corrupt or truncated archive found while the caller reads the stream."""
    where = f" inside a {inside} file" if inside else ""
    try:
        refuse = (
            f"a tar archive{where} whose headers (names, pax records, sparse maps) pass "
            f"{MAX_HEADER_BYTES} bytes: upload one waveform file per blob"
        )
        with (
            _HeaderBudget(path, name, refuse) as fileobj,
            tarfile.open(fileobj=fileobj, mode="r:") as tar,
        ):
            first: list[tarfile.TarInfo] = []
            files = entries = 0
            # tar.next() reads one header at a time (getmembers() would read them all first).
            while (member := tar.next()) is not None:
                entries += 1
                if entries > MAX_ENTRIES:
                    raise FormatError(
                        name,
                        f"a tar archive{where} with more than {MAX_ENTRIES} entries "
                        f"({files} files among them): upload one waveform file per blob",
                    )
                if member.isfile() and not ignored(member.name, False):
                    files += 1
                    if len(first) < 3:
                        first.append(member)
            if files != 1:
                names = [m.name for m in first]
                raise FormatError(name, _several(f"a tar archive{where}", files, names))
            fileobj.budget = None  # the member's data is read in bounded chunks
            src = tar.extractfile(first[0])
            if src is None:  # pragma: no cover - isfile() members always have data
                raise FormatError(name, f"tar member {first[0].name!r} has no data")
            with src:
                yield src
    except (tarfile.TarError, EOFError) as exc:
        raise FormatError(
            name, f"corrupt or truncated tar archive{where}: {type(exc).__name__}: {exc}"
        ) from exc
