"""The one place that knows the share's path layout.

The share's top level is fixed, so that the SeisComP VM, the operators' tools and the
functions agree::

    decimated/<field>/<rest of blob name>.<ext>   decimated files (convert's input)
    mseed/<field>/<rest of blob name>.mseed       what seedlink's mseedscan streams
    mseed/<field>/_seams/<stream>/<key>-<half>.mseed  seam halves whose neighbour never came
    failed/<YYYY-MM-DD>/<stage>-<key>.json        failure records, replayable
    staging/                                      temporary names for atomic writes
    state/seams/<field>/<stream>/<key>/           seam edges and claims (shared_code.seams)

Every path is derived from the source blob name by :func:`blob_paths`, so a blob always maps to
the same paths (idempotent re-runs), and no blob name can escape the share root.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from shared_code.writeback import EarlyWriteback

DECIMATED = "decimated"
MSEED = "mseed"
FAILED = "failed"
STAGING = "staging"
STATE = "state"
TOP_LEVEL = (DECIMATED, MSEED, FAILED, STAGING, STATE)

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]{0,254}$")
_FIELD = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_BLOB_NAME = 1024


class BlobNameError(ValueError):
    """A blob name that cannot be mapped to a share path; the message names the blob and why."""


@dataclass(frozen=True)
class BlobName:
    """A validated raw blob name: ``<field>/<rest>``."""

    name: str
    field: str
    rest: PurePosixPath


def parse_blob_name(name: str) -> BlobName:
    """Validate a blob name (relative to the raw container) and split off its field.

    Rejects absolute names, empty or ``.``/``..`` segments, control characters and characters
    outside ``[A-Za-z0-9._+=@-]``, so the derived share paths stay under the share root.
    """
    shown = name.encode("unicode_escape").decode("ascii")
    if not name:
        raise BlobNameError("empty blob name")
    if len(name) > MAX_BLOB_NAME:
        raise BlobNameError(f"blob {shown[:80]}...: name longer than {MAX_BLOB_NAME} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BlobNameError(f"blob {shown!r}: name contains control characters")
    if name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
        raise BlobNameError(f"blob {shown!r}: absolute or Windows-style name")
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BlobNameError(f"blob {shown!r}: empty, '.' or '..' path segment")
        if not _SEGMENT.match(part):
            raise BlobNameError(
                f"blob {shown!r}: segment {part!r} has characters outside [A-Za-z0-9._+=@-]"
            )
    if len(parts) < 2:
        raise BlobNameError(f"blob {shown!r}: expected <field>/<file>, found no field folder")
    field = parts[0].lower()
    if not _FIELD.match(field):
        raise BlobNameError(f"blob {shown!r}: field folder {parts[0]!r} is not a valid field name")
    return BlobName(name=name, field=field, rest=PurePosixPath(*parts[1:]))


@dataclass(frozen=True)
class BlobPaths:
    """Share-relative paths (POSIX) that one raw blob maps to."""

    blob: BlobName

    def decimated(self, extension: str) -> str:
        """Decimated file; ``extension`` names its format (``segy``, ``mseed``, ...)."""
        ext = extension.lstrip(".").lower()
        return f"{DECIMATED}/{self.blob.field}/{self.blob.rest}.{ext}"

    @property
    def mseed(self) -> str:
        return f"{MSEED}/{self.blob.field}/{self.blob.rest}.mseed"

    @property
    def key(self) -> str:
        """A short stable key for the blob, safe as a file name."""
        return blob_key(self.blob.name)


def blob_paths(name: str) -> BlobPaths:
    """The one function that maps a raw blob name to its share paths."""
    return BlobPaths(parse_blob_name(name))


def blob_key(name: str, *extra: str) -> str:
    """A stable file-name-safe key for any string (hostile names included)."""
    digest = hashlib.sha256("\0".join((name, *extra)).encode("utf-8", "surrogatepass"))
    safe = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", name)[-60:].strip("._") or "blob"
    return f"{safe}-{digest.hexdigest()[:16]}"


def seam_mseed_path(field: str, stream: str, key: int, half: str) -> str:
    """MiniSEED of a seam half emitted on its own (its neighbour never came)."""
    if not _FIELD.match(field) or not re.fullmatch(r"[0-9a-f]{8,64}", stream):
        raise ValueError(f"bad seam stream {field!r}/{stream!r}")
    if half not in ("left", "right"):
        raise ValueError(f"half {half!r}: expected left or right")
    return f"{MSEED}/{field}/_seams/{stream}/{int(key)}-{half}.mseed"


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
        with open(tmp, "wb") as raw, EarlyWriteback(raw) as fh:
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
