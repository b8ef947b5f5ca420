"""Seamless joins across files: edge exchange through the share, with claims.

Consecutive files of one stream are decimated separately, in any order and possibly at the
same time, yet must join into exactly what decimating the whole record would give. Each output
sample needs input within ±support of its time (the cascaded FIR's half-length), so a file alone
can produce only its *interior*: the output grid points whose support lies inside it. The grid
points near a boundary T between file A (ending at T) and file B (starting at T) form the
*seam*; they need input from both files.

Mechanism (edges on the share, no coordinator):

1. Every file writes its raw *edges* to ``state/seams/<field>/<stream>/<boundary>/``:
   the first S input samples as ``head`` at the boundary key of its start, the last S as
   ``tail`` at the key of its end (S covers twice the support). The boundary key is the
   boundary's index on the absolute input-sample grid, so A's end and B's start meet on the
   same key whatever order they come in. ``<stream>`` is a hash of the field, the input rate
   and the traces' identities, so only files of the same stream meet.
2. After writing its own edges, a file looks for the partner edge at each of its boundaries.
   Because both files write before they look, when two neighbours run concurrently at least
   one of them sees the other's edge.
3. The seam is split at T into a *left* half (grid points before T) and a *right* half (at or
   after T). Whoever sees both edges computes the seam from tail+head and *claims* each half
   by creating ``left.claim`` / ``right.claim`` exclusively (``O_CREAT|O_EXCL``, atomic on a
   local disk and on Azure Files SMB). Exactly one producer emits each half. A re-run of the
   same blob version owns its earlier claims (the claim holds the owner), so duplicate
   deliveries produce the same bytes.
4. The claimed seam samples are joined to the claimer's own interior, so every decimated file
   is one contiguous run on the output grid: ``[head seam] + interior + [tail seam]``.
5. A neighbour that never arrives is a real gap: after ``SEAM_TIMEOUT_MINUTES`` a sweep
   (:func:`pending_halves`) claims the lonely half and emits it from the one edge it has, with
   the missing side filled by edge extension, so the data up to the gap is delivered no later
   than the timeout plus the sweep period. A neighbour arriving after that still emits its own
   half exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from shared_code.share_layout import STATE, atomic_writer, resolve
from shared_code.waveforms import NS_PER_S, TraceMeta

SEAMS = f"{STATE}/seams"
HEAD, TAIL = "head", "tail"
LEFT, RIGHT = "left", "right"


def stream_signature(field: str, rate: Fraction, traces: Iterable[TraceMeta]) -> str:
    """A short hash naming a stream: field, input rate (Hz) and trace identities in order."""
    digest = hashlib.sha256(f"{field}|{rate}".encode())
    for t in traces:
        digest.update(f"|{t.index}:{t.network}.{t.station}.{t.location}.{t.channel}".encode())
    return digest.hexdigest()[:20]


def boundary_key(time_ns: int, rate: Fraction) -> int:
    """The boundary's index on the absolute input grid (samples since 1970 at ``rate`` Hz)."""
    return round(Fraction(time_ns, NS_PER_S) * rate)


@dataclass(frozen=True)
class Edge:
    """Raw input samples at one side of a boundary (traces × samples), with their timing."""

    data: np.ndarray
    starttime_ns: int
    owner: str


class SeamStore:
    """The edges and claims of one stream, under ``state/seams/<field>/<stream>/`` on the share."""

    def __init__(self, share_root: Path, field: str, stream: str) -> None:
        self.share_root = share_root
        self.relative = f"{SEAMS}/{field}/{stream}"

    def _dir(self, key: int) -> str:
        return f"{self.relative}/{key}"

    def put_edge(self, key: int, side: str, edge: Edge) -> None:
        """Store an edge atomically (``side`` is ``head`` or ``tail``)."""
        buffer = io.BytesIO()
        np.save(buffer, edge.data, allow_pickle=False)
        meta = {"starttime_ns": edge.starttime_ns, "owner": edge.owner}
        with atomic_writer(self.share_root, f"{self._dir(key)}/{side}.npy") as (_tmp, fh):
            fh.write(buffer.getvalue())
        with atomic_writer(self.share_root, f"{self._dir(key)}/{side}.json") as (_tmp, fh):
            fh.write(json.dumps(meta).encode())

    def get_edge(self, key: int, side: str) -> Edge | None:
        base = resolve(self.share_root, f"{self._dir(key)}/{side}")
        meta_path, data_path = base.with_suffix(".json"), base.with_suffix(".npy")
        # The .json is renamed into place after the .npy: present json means complete edge.
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        data = np.load(data_path, allow_pickle=False)
        return Edge(data=data, starttime_ns=int(meta["starttime_ns"]), owner=str(meta["owner"]))

    def claim(self, key: int, half: str, owner: str) -> bool:
        """Claim a seam half; True if ``owner`` holds it (newly, or from an earlier run)."""
        path = resolve(self.share_root, f"{self._dir(key)}/{half}.claim")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return _read_owner(path) == owner
        with os.fdopen(fd, "w") as fh:
            fh.write(owner)
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def keys(self) -> Iterator[int]:
        base = resolve(self.share_root, self.relative)
        if base.is_dir():
            for child in base.iterdir():
                with contextlib.suppress(ValueError):
                    yield int(child.name)


def _read_owner(path: Path) -> str:
    # A claim is created empty and then written; a reader racing the writer waits briefly.
    for _ in range(50):
        owner = path.read_text()
        if owner:
            return owner
        time.sleep(0.02)
    return path.read_text()
