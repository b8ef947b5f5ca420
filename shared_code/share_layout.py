"""The one place that knows the share's path layout.

The share's top level is fixed, so that the SeisComP VM, the operators' tools and the
functions agree::

    decimated/<field>/<rest of blob name>.<ext>   decimated files (convert's input)
    mseed/<field>/<YYYY>/<DDD>/<folded name>.mseed  what seedlink's mseedscan streams
    mseed/<field>/_seams/<stream>/<key>-<half>.mseed  seam halves whose neighbour never came
    failed/<YYYY-MM-DD>/<stage>-<key>.json        failure records, replayable
    staging/                                      temporary names for atomic writes
    state/seams/<field>/<stream>/<key>/           seam edges and claims (shared_code.seams)

Every path is derived from the source blob name by :func:`blob_paths`, so a blob always maps to
the same paths (idempotent re-runs), no blob's path equals another blob's file or folder nor a
folder the layout owns (also on a case-insensitive Azure Files share), and no blob name can
escape the share root. ``<rest of blob name>`` is the blob name's segments, each kept as it is
where that is safe, else made safe and suffixed with ``~<hash>`` (see :func:`parse_blob_name`);
the original name is what the ledger and the failure records hold.

Under ``mseed/`` the depth is fixed, whatever the blob's name: SeisComP's mseedscan reads
files at most 3 folders below its scan root and skips paths of 511 characters or more
(:mod:`shared_code.seiscomp` checks :data:`MSEED_DEPTH` and :data:`MAX_MSEED_PATH_BYTES`
against the plugin's command line). A MiniSEED file's folders are the UTC year and day of
year of the raw file's first sample (``2026/327``, as in SeisComP's SDS archives), and the
blob's folders are folded into the file name (:func:`folded_name`): ``snorre/2026/11/23/
line4.sgy`` with data from 23 November 2026 is ``mseed/snorre/2026/327/2026~~11~~23~~line4.sgy
.mseed``. The day is the data's, as seismologists file data, not the upload's: decimate reads
it from the raw headers before any sample (``ConvertRequest.data_start_ns``), so it depends on
the blob's content only, not on seams nor on how the blob arrived (an Event Grid event's time
and reconcile's creation time differ and could straddle midnight). The same blob version
always maps to the same path; a new version whose data starts on another day lands in that
day's folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from shared_code.staging import STAGING, keep_alive
from shared_code.writeback import EarlyWriteback

DECIMATED = "decimated"
MSEED = "mseed"
FAILED = "failed"
STATE = "state"
TOP_LEVEL = (DECIMATED, MSEED, FAILED, STAGING, STATE)

_FIELD = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: Azure's limit on a blob name, characters (Naming and Referencing Containers, Blobs, and
#: Metadata: "A blob name must be at least one character long and cannot be more than 1,024
#: characters long"; https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata).
MAX_BLOB_NAME = 1024

# Azure Files (SMB) rules for directory and file names (Naming and referencing shares,
# directories, files, and metadata; https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-shares--directories--files--and-metadata):
# case-preserving but case-insensitive; a component is at most 255 characters; these
# characters are not allowed: " \ / : | < > * ? ; nor control characters 0x00-0x1F; nor the
# names LPT1-9, COM1-9, PRN, AUX, NUL, CON, CLOCK$, "." and "..".
_FORBIDDEN_ON_SHARE = frozenset('"\\:|<>*?')
_RESERVED = frozenset(
    {"PRN", "AUX", "NUL", "CON", "CLOCK$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in range(1, 10)}
)
#: Separates a mapped segment from the hash of its original; never left in a segment kept
#: as it is, so a hashed segment never equals a kept one.
_MARK = "~"
#: Hex digits of SHA-256 kept as a segment's hash: 40 bits, for names that also share the
#: same mapped text in the same folder.
_HASH_CHARS = 10
#: UTF-8 bytes a mapped segment may use: 255 (the component limit above; Linux file systems
#: count bytes, Azure Files UTF-16 units, and a byte count is never below the unit count)
#: less room for the extension the layout appends (``.mseed``, ``.segy``, ...).
MAX_SEGMENT_BYTES = 255 - 16
#: UTF-8 bytes of a blob's decimated path (``decimated/<field>/<rest>.<ext>``, as deep as
#: the blob name; not scanned by SeisComP): a bound that keeps operators' tools and Linux's
#: 4096-byte PATH_MAX far away, so a name too deep or too long is refused clearly, up front.
MAX_PATH_BYTES = 400
#: Bytes a segment is cut to when the whole path would pass :data:`MAX_PATH_BYTES`.
_SHORT_SEGMENT_BYTES = 48
#: Extensions (no dot, lower case) the layout appends to a blob's mapped path to name its
#: files: ``.mseed`` and every format's in ``shared_code.formats.EXTENSIONS`` (a test holds
#: them equal; formats is not imported here, it pulls in ObsPy). A folder segment ending in
#: one is hashed, so no blob's folder is another blob's file (``a`` -> ``a.mseed``).
FILE_EXTENSIONS = frozenset({"mseed", "ccsw", "gse2", "sac", "segy", "su"})
#: Segments starting with this are the layout's own folders (``_seams``); a blob segment
#: starting with it is hashed, so no blob maps into them.
_LAYOUT_PREFIX = "_"
#: The seam halves' folder under ``mseed/<field>/``.
SEAMS = "_seams"
#: Joins a blob's mapped segments in its MiniSEED file name. A mapped segment never holds
#: ``~~`` nor starts or ends with ``~`` (its only ``~`` is the hash mark, between the text and
#: the hex digits), so each ``~~`` in a folded name is a separator: folding is one-to-one.
FOLD = "~~"
#: Ends a folded name cut to fit, before a hash of the whole mapped path; never in an uncut
#: folded name (no ``~`` run there is longer than two), so a cut name equals no uncut one.
_CUT_MARK = "~~~"
#: Hex digits of SHA-256 (64 bits) that tell cut folded names apart.
_CUT_HASH_CHARS = 16
#: UTF-8 bytes of a folded name: the 255-byte component limit less ``.mseed``.
MAX_FOLDED_BYTES = 255 - len(".mseed")
#: Folders between ``mseed/`` and a MiniSEED file: ``<field>/<YYYY>/<DDD>/`` for converted
#: files, ``<field>/_seams/<stream>/`` for seam halves.
MSEED_DEPTH = 3
#: The longest seam key written (a signed 64-bit integer), for :data:`MAX_MSEED_PATH_BYTES`.
_SEAM_KEY_LIMIT = 2**63


class BlobNameError(ValueError):
    """A blob name that cannot be mapped to a share path; the message names the blob and why."""


@dataclass(frozen=True)
class BlobName:
    """A validated raw blob name: ``<field>/<rest>``.

    ``name`` is the blob name as Azure holds it (what the ledger, failure records and logs
    show); ``rest`` is the share-safe relative path it maps to under the field's folders.
    """

    name: str
    field: str
    rest: PurePosixPath


def parse_blob_name(name: str) -> BlobName:
    """Validate a blob name (relative to the raw container), split off its field and map the
    rest to a share-safe path.

    Any name Azure accepts is mapped, except absolute names, empty, ``.`` or ``..`` segments
    (traversal), control characters (C0, DEL, C1), unpaired surrogates, and a first folder
    that is not a field name. The mapping keeps each segment as it is where that is safe on
    Azure Files and SeisComP; otherwise it replaces what is not (characters Azure Files
    forbids or that render invisibly, a trailing dot or space, a reserved device name,
    non-NFC Unicode, an over-long segment) and appends ``~<hash of the original segment>``.
    A segment with upper-case letters keeps them but gets the hash too: the share compares
    names case-insensitively, so ``A.sgy`` and ``a.sgy`` must not map to one file. The
    mapping is deterministic and one-to-one (see :func:`_map_segment`).
    """
    shown = name.encode("unicode_escape").decode("ascii")
    if not name:
        raise BlobNameError("empty blob name")
    if len(name) > MAX_BLOB_NAME:
        raise BlobNameError(f"blob {shown[:80]}...: name longer than {MAX_BLOB_NAME} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise BlobNameError(f"blob {shown!r}: name contains control characters")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
        raise BlobNameError(f"blob {shown!r}: name contains an unpaired UTF-16 surrogate")
    if name.startswith("/"):
        raise BlobNameError(f"blob {shown!r}: absolute name")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BlobNameError(f"blob {shown!r}: empty, '.' or '..' path segment")
    if len(parts) < 2:
        raise BlobNameError(f"blob {shown!r}: expected <field>/<file>, found no field folder")
    field = parts[0].lower()
    if not _FIELD.match(field):
        raise BlobNameError(f"blob {shown!r}: field folder {parts[0]!r} is not a valid field name")
    # The field folder on the share is the field's name; a blob whose first folder differs
    # from it in case (``Snorre/``) carries that difference in its file segment's hash.
    salt = "" if parts[0] == field else parts[0]
    folders, file = parts[1:-1], parts[-1]
    rest = [*(_map_segment(p, folder=True) for p in folders), _map_segment(file, salt)]
    mapped = PurePosixPath(*rest)
    if _decimated_bytes(field, mapped) > MAX_PATH_BYTES:
        short = _SHORT_SEGMENT_BYTES
        rest = [
            *(_map_segment(p, limit=short, folder=True) for p in folders),
            _map_segment(file, salt, short),
        ]
        mapped = PurePosixPath(*rest)
        if _decimated_bytes(field, mapped) > MAX_PATH_BYTES:
            raise BlobNameError(
                f"blob {shown[:80]}...: {len(parts)} folders too deep to map to a path under "
                f"{MAX_PATH_BYTES} bytes"
            )
    return BlobName(name=name, field=field, rest=mapped)


def _decimated_bytes(field: str, rest: PurePosixPath) -> int:
    """UTF-8 bytes of the longest decimated path of a mapped blob name (any extension)."""
    ext = max(FILE_EXTENSIONS, key=len)
    return len(f"{DECIMATED}/{field}/{rest}.{ext}".encode())


def _map_segment(
    original: str, salt: str = "", limit: int = MAX_SEGMENT_BYTES, *, folder: bool = False
) -> str:
    """One blob-name segment as a share path segment (``folder``: not the name's last).

    Kept as it is when it is already safe: NFC, no upper-case letter, nothing replaced, not
    reserved, within ``limit`` bytes, free of ``~``, not starting with ``_`` (the layout's own
    folders) and, for a folder, not ending in ``.<ext>`` of :data:`FILE_EXTENSIONS`. Otherwise
    the safe text (cut to fit) plus ``~`` and a hash of the original (and ``salt``).
    One-to-one within a folder, also case-insensitively: a kept segment holds no ``~`` and is
    the lower case of its upper case (so no other kept segment equals it in another case: not
    ``A``, nor ``ς`` against ``σ``), hence never equals a hashed one; two hashed ones that
    compare equal carry equal hashes, hence (up to a 40-bit hash) equal originals. Across
    levels: a file is its segment plus ``.<ext>``; a folder never ends so (kept ones by the
    rule above, hashed ones end in hex digits), so no folder is another blob's file.
    """
    text = unicodedata.normalize("NFC", original)
    text = "".join(_safe_char(c) for c in text)
    stripped = text.rstrip(". ")
    # Windows and SMB drop a trailing dot or space, so ``a.`` and ``a`` would meet.
    text = stripped + "_" * (len(text) - len(stripped))
    if text.split(".")[0].upper() in _RESERVED:
        text = "_" + text
    kept = text == original == text.upper().lower() and not salt and len(text.encode()) <= limit
    if kept and not text.startswith(_LAYOUT_PREFIX) and not (folder and _has_file_extension(text)):
        return text
    digest = hashlib.sha256(f"{salt}/{original}".encode()).hexdigest()[:_HASH_CHARS]
    room = limit - len(_MARK) - _HASH_CHARS
    cut = text.encode()[:room].decode("utf-8", "ignore")
    return f"{cut}{_MARK}{digest}"


def _has_file_extension(segment: str) -> bool:
    """Whether ``segment`` ends in ``.<ext>`` for an extension the layout appends to files."""
    return "." in segment and segment.rpartition(".")[2] in FILE_EXTENSIONS


def _safe_char(c: str) -> str:
    """``c`` or ``_``: characters Azure Files forbids, our hash mark, and characters that
    render invisibly or not at all (format, private-use, unassigned) become ``_``."""
    if c in _FORBIDDEN_ON_SHARE or c == _MARK:
        return "_"
    return "_" if unicodedata.category(c) in ("Cf", "Co", "Cn") else c


@dataclass(frozen=True)
class BlobPaths:
    """Share-relative paths (POSIX) that one raw blob maps to."""

    blob: BlobName

    def decimated(self, extension: str) -> str:
        """Decimated file; ``extension`` names its format (``segy``, ``mseed``, ...)."""
        ext = extension.lstrip(".").lower()
        return f"{DECIMATED}/{self.blob.field}/{self.blob.rest}.{ext}"

    def mseed(self, data_start_ns: int) -> str:
        """MiniSEED file: ``mseed/<field>/<YYYY>/<DDD>/<folded name>.mseed``, in the folder of
        the UTC day of ``data_start_ns`` (ns since 1970), the raw file's first sample."""
        return f"{MSEED}/{self.blob.field}/{day_folder(data_start_ns)}/{self.folded}.mseed"

    @property
    def folded(self) -> str:
        """The blob's mapped segments as one file name (see :func:`folded_name`)."""
        return folded_name(self.blob.rest)

    @property
    def key(self) -> str:
        """A short stable key for the blob, safe as a file name."""
        return blob_key(self.blob.name)


def blob_paths(name: str) -> BlobPaths:
    """The one function that maps a raw blob name to its share paths."""
    return BlobPaths(parse_blob_name(name))


def mseed_files(share_root: Path, name: str) -> list[Path]:
    """The MiniSEED files of blob ``name`` on the share, whatever their day folder (one per
    day its versions' data started on; usually one), sorted."""
    import glob

    paths = blob_paths(name)
    pattern = f"*/*/{glob.escape(paths.folded)}.mseed"
    return sorted((share_root / MSEED / paths.blob.field).glob(pattern))


def folded_name(rest: PurePosixPath) -> str:
    """A blob's mapped path below its field folder (:attr:`BlobName.rest`) as one file name:
    its segments joined by :data:`FOLD` (``2026/11/23/a.sgy`` -> ``2026~~11~~23~~a.sgy``).

    A name over :data:`MAX_FOLDED_BYTES` keeps its end (the file's own name is the part a
    reader recognises) and ends in :data:`_CUT_MARK` plus a hash of ``rest``. One-to-one:
    uncut names by the rule of :data:`FOLD` and the segments' own mapping (one-to-one also
    case-insensitively); cut ones by their hash; a cut name never equals an uncut one.
    Depends on ``rest`` only, so the old layout's paths (``mseed/<field>/<rest>.mseed``)
    map to the new ones without the original blob name (:mod:`shared_code.mseed_migrate`).
    """
    text = FOLD.join(rest.parts)
    if len(text.encode()) <= MAX_FOLDED_BYTES:
        return text
    digest = hashlib.sha256(rest.as_posix().encode()).hexdigest()[:_CUT_HASH_CHARS]
    room = MAX_FOLDED_BYTES - len(_CUT_MARK) - _CUT_HASH_CHARS
    tail = text.encode()[-room:].decode("utf-8", "ignore").strip("~")
    return f"{tail}{_CUT_MARK}{digest}"


def day_folder(data_start_ns: int) -> str:
    """``<YYYY>/<DDD>``: UTC year and day of year (001-366) of a time in ns since 1970.

    Raises ValueError for a time outside the years 1-9999.
    """
    try:
        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=data_start_ns // 1000)
    except OverflowError:
        raise ValueError(f"data start {data_start_ns} ns is outside the years 1-9999") from None
    return f"{when.year:04d}/{when.timetuple().tm_yday:03d}"


def _longest_mseed_path() -> int:
    """UTF-8 bytes of the longest share-relative path the layout can give a MiniSEED file."""
    field = "f" * 63  # the longest field name _FIELD accepts
    converted = len(f"{MSEED}/{field}/9999/366/{'x' * MAX_FOLDED_BYTES}.mseed")
    seam = len(f"{MSEED}/{field}/{SEAMS}/{'0' * 64}/{-_SEAM_KEY_LIMIT}-right.mseed")
    return max(converted, seam)


#: The longest share-relative MiniSEED path (bytes); :mod:`shared_code.seiscomp` checks it,
#: with the VM's mount point in front, against :data:`MSEEDSCAN_MAX_PATH`.
MAX_MSEED_PATH_BYTES = _longest_mseed_path()


#: The characters of the names the first parser accepted (segments of ``[A-Za-z0-9._+=@-]``
#: joined by ``/``). Ledger rows exist for such names under their first-rule keys.
_FIRST_ALPHABET = re.compile(r"[A-Za-z0-9._+=@/-]*")


def blob_key(name: str, *extra: str) -> str:
    """A stable file-name-safe key for any string (hostile names included).

    Also a valid Azure Table key (no ``/ \\ # ?`` nor control characters): letters and
    digits of any script, ``.``, ``_`` and ``-`` are kept, the rest become ``_``; a hash of
    the whole makes it unique. The kept part is the name's last 120 UTF-8 bytes, or its last
    60 for a name made only of the first parser's characters: those are the keys the ledger
    (``ledger.row_key``) already holds rows under, which reconcile must find again.
    """
    digest = hashlib.sha256("\0".join((name, *extra)).encode("utf-8", "surrogatepass"))
    # On ASCII, [^\w.-] is the first rule's [^A-Za-z0-9._-] and bytes are characters.
    safe = re.sub(r"[^\w.-]+|\.{2,}", "_", name)
    limit = 60 if _FIRST_ALPHABET.fullmatch(name) else 120
    while len(safe.encode("utf-8", "surrogatepass")) > limit:
        safe = safe[1:]
    safe = safe.strip("._") or "blob"
    return f"{safe}-{digest.hexdigest()[:16]}"


def seam_mseed_path(field: str, stream: str, key: int, half: str) -> str:
    """MiniSEED of a seam half emitted on its own (its neighbour never came)."""
    if not _FIELD.match(field) or not re.fullmatch(r"[0-9a-f]{8,64}", stream):
        raise ValueError(f"bad seam stream {field!r}/{stream!r}")
    if half not in ("left", "right"):
        raise ValueError(f"half {half!r}: expected left or right")
    if not -_SEAM_KEY_LIMIT <= int(key) < _SEAM_KEY_LIMIT:
        raise ValueError(f"seam key {key} is not a signed 64-bit integer")
    return f"{MSEED}/{field}/{SEAMS}/{stream}/{int(key)}-{half}.mseed"


def failure_path(day: str, stage: str, key: str) -> str:
    """Share-relative path of a failure record; ``day`` is ``YYYY-MM-DD`` (UTC)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise ValueError(f"day {day!r}: expected YYYY-MM-DD")
    if not re.fullmatch(r"[a-z]+", stage):
        raise ValueError(f"stage {stage!r}: expected lowercase letters")
    return f"{FAILED}/{day}/{stage}-{key}.json"


def resolve(share_root: Path, relative: str) -> Path:
    """Absolute path of a share-relative path, refusing anything outside the share root."""
    root = share_root.resolve()
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] not in TOP_LEVEL:
        raise ValueError(f"path {relative!r} is not under one of the share's top-level folders")
    full = (root / Path(*rel.parts)).resolve()
    if root not in full.parents:
        raise ValueError(f"path {relative!r} escapes the share root")
    return full


def ensure_layout(share_root: Path) -> None:
    """Create the share's top-level folders (idempotent)."""
    for top in TOP_LEVEL:
        (share_root / top).mkdir(parents=True, exist_ok=True)


@contextmanager
def atomic_writer(share_root: Path, relative: str) -> Iterator[tuple[Path, BinaryIO]]:
    """Write a share file atomically: a staging name, fsync, then rename into place.

    Yields ``(staging_path, file)``; the file is flushed to the device in the background as it
    grows (:mod:`shared_code.writeback`) and fsynced at the end. A reader of the final path
    sees either the previous complete file or the new complete file, never a partial one; on
    error the staging file is removed and the final path is left as it was. The staging area
    lies outside ``mseed/`` (seedlink never sees it) but on the same share, so the rename is
    atomic.
    """
    target = resolve(share_root, relative)
    staging_dir = share_root / STAGING
    staging_dir.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir / f"{uuid.uuid4().hex}{target.suffix}.part"
    try:
        # keep_alive: a long write is never taken for a dead worker's orphan (shared_code.staging).
        with open(tmp, "wb") as raw, keep_alive(tmp), EarlyWriteback(raw) as fh:
            # An io.BufferedIOBase, which is what library writers accept as an open file.
            yield tmp, cast(BinaryIO, fh)
            fh.sync()
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(share_root: Path, relative: str, payload: bytes) -> Path:
    """Write ``payload`` to a share-relative path atomically; returns the absolute path."""
    with atomic_writer(share_root, relative) as (_tmp, fh):
        fh.write(payload)
    return resolve(share_root, relative)
