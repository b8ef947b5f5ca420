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
   ``tail`` at the key of its end (S covers twice the support), one ``.edge`` file each. The
   boundary key is the boundary's index on the absolute input-sample grid, so A's end and
   B's start meet on the same key whatever order they come in. ``<stream>`` is a hash of the
   field, the input rate and the traces' identities, so only files of the same stream meet.
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
   (:mod:`shared_code.seam_sweep`) claims the lonely half and emits it from the one edge it
   has, with the missing edge made up by the engine's edge extension, so the data up to the
   gap is delivered no later than the timeout plus the sweep period. A neighbour arriving
   after that still emits its own half exactly.

The halves split at the key's grid point, not at the file's own first sample: a file whose
start is off its input grid (a recorder's clock stamps it a fraction of a period late or
early) starts up to half an input period after or before its key, and the output grid points
in between belong to the half the key gives them, whichever file computes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared_code.dsp import DecimationPlan, decimate, extended, output_span
from shared_code.etags import canonical_etag
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


#: The trace identities an edge's metadata carries, as columns (one list per attribute:
#: thousands of traces encode as a few JSON lists, not thousands of objects).
TRACE_ID_COLUMNS = ("index", "network", "station", "location", "channel")


def trace_columns(traces: list[TraceMeta]) -> dict[str, list[object]]:
    return {name: [getattr(t, name) for t in traces] for name in TRACE_ID_COLUMNS}


def traces_from_columns(columns: dict[str, list[Any]]) -> list[TraceMeta]:
    """The inverse of :func:`trace_columns` (identities only; no headers)."""
    rows = zip(*(columns[name] for name in TRACE_ID_COLUMNS), strict=True)
    return [TraceMeta(**dict(zip(TRACE_ID_COLUMNS, row, strict=True))) for row in rows]


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

    def _edge_path(self, key: int, side: str) -> str:
        return f"{self._dir(key)}/{side}{EDGE_SUFFIX}"

    def put_edge(self, key: int, side: str, edge: Edge, meta: dict[str, Any] | str) -> None:
        """Store an edge (``side`` is ``head`` or ``tail``) with ``meta``: what a sweep needs to
        emit a lonely half on its own (field, rates in Hz, trace identities), as a dict or
        already JSON-encoded (a file's two edges share it). One file, written atomically: a
        present edge is a complete edge. See :func:`write_edge` for the file's layout."""
        text = meta if isinstance(meta, str) else json.dumps(meta)
        own = json.dumps({"starttime_ns": edge.starttime_ns, "owner": edge.owner})
        with atomic_writer(self.share_root, self._edge_path(key, side)) as (_tmp, fh):
            write_edge(fh, text, own, edge.data)

    def edge_meta(self, key: int, side: str) -> dict[str, Any] | None:
        path = resolve(self.share_root, self._edge_path(key, side))
        if not path.exists():
            return None
        with open(path, "rb") as fh:
            return read_edge(fh, path, with_data=False)[0]

    def get_edge(self, key: int, side: str) -> Edge | None:
        path = resolve(self.share_root, self._edge_path(key, side))
        if not path.exists():
            return None
        with open(path, "rb") as fh:
            meta, data = read_edge(fh, path, with_data=True)
        assert data is not None
        return Edge(data=data, starttime_ns=int(meta["starttime_ns"]), owner=str(meta["owner"]))

    def claimed(self, key: int, half: str) -> bool:
        return resolve(self.share_root, f"{self._dir(key)}/{half}.claim").exists()

    def edge_age_s(self, key: int, side: str, now: float | None = None) -> float:
        """Seconds since the edge was written."""
        path = resolve(self.share_root, self._edge_path(key, side))
        return (time.time() if now is None else now) - path.stat().st_mtime

    def claim(self, key: int, half: str, owner: str) -> bool:
        """Claim a seam half; True if ``owner`` holds it (newly, or from an earlier run)."""
        path = resolve(self.share_root, f"{self._dir(key)}/{half}.claim")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return _same_version(_read_owner(path), owner)
        # UTF-8 whatever the locale: the owner holds the blob name, which may be 小文件.sgy.
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
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


#: Edge files: a magic line, then three ``.npy`` arrays (numpy's own format, read with
#: ``allow_pickle=False``): the stream's metadata as UTF-8 JSON bytes, this edge's own
#: (start time, owner) likewise, and the samples (traces × samples). Plain ``.npy`` blocks
#: rather than ``.npz``: no zip CRC over megabytes of samples and no copy through memory.
EDGE_SUFFIX = ".edge"
EDGE_MAGIC = b"CCS-PASSIVE EDGE 1\n"


def write_edge(fh: BinaryIO, meta_json: str, own_json: str, data: np.ndarray) -> None:
    """Write an edge file's content (see :data:`EDGE_MAGIC`) to an open binary file."""
    fh.write(EDGE_MAGIC)
    for text in (meta_json, own_json):
        np.lib.format.write_array(fh, np.frombuffer(text.encode(), np.uint8))
    np.lib.format.write_array(fh, np.ascontiguousarray(data), allow_pickle=False)


def read_edge(
    fh: BinaryIO, path: Path, *, with_data: bool
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The metadata (stream's and edge's merged) and, if asked, the samples of an edge file."""
    if fh.read(len(EDGE_MAGIC)) != EDGE_MAGIC:
        raise ValueError(f"{path}: not a seam edge file")
    meta = dict(json.loads(np.lib.format.read_array(fh, allow_pickle=False).tobytes()))
    meta.update(json.loads(np.lib.format.read_array(fh, allow_pickle=False).tobytes()))
    data = np.lib.format.read_array(fh, allow_pickle=False) if with_data else None
    return meta, data


def _same_version(held: str, owner: str) -> bool:
    # Claims written before ETags were canonical may hold the SDK's quoted ETag
    # ("blob@\"0x8D..\"") for the version an event names bare: the same version.
    blob, _, etag = held.rpartition("@")
    return f"{blob}@{canonical_etag(etag)}" == owner if blob else held == owner


def _read_owner(path: Path) -> str:
    # A claim is created empty and then written; a reader racing the writer waits briefly.
    for _ in range(50):
        owner = path.read_text(encoding="utf-8")
        if owner:
            return owner
        time.sleep(0.02)
    return path.read_text(encoding="utf-8")


def edge_length(plan: DecimationPlan) -> int:
    """Input samples kept per edge: twice the composite support plus a few output periods,
    so that tail+head alone make every seam output exact (valid mode), and a tail (head)
    alone tells where its file's valid outputs end (begin)."""
    ratio = math.ceil(plan.input_rate / plan.output_rate)
    return 2 * plan.support_samples + 4 * ratio + 16


def boundary_index(key: int, plan: DecimationPlan) -> int:
    """First output-grid index at or after the boundary: outputs ``k < kT`` are the left half."""
    time_s = Fraction(key) / plan.input_rate
    return math.ceil(time_s * plan.output_rate)


@dataclass(frozen=True)
class SeamPiece:
    """Seam outputs for all traces of a block: ``data`` (traces × n) starting at absolute
    output-grid index ``first_index`` (time ``first_index / fs_out``)."""

    data: np.ndarray
    first_index: int

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])


def _valid_last(plan: DecimationPlan, edge: Edge) -> int:
    span = output_span(plan, edge.starttime_ns, edge.data.shape[1], "valid")
    return span.first_index + span.n_samples - 1


def _valid_first(plan: DecimationPlan, edge: Edge) -> int:
    return output_span(plan, edge.starttime_ns, edge.data.shape[1], "valid").first_index


def _take(plan: DecimationPlan, data: np.ndarray, start_ns: int, *, lo: int, hi: int) -> SeamPiece:
    """Outputs with grid index in ``[lo, hi)`` of decimating ``data`` in ``valid`` mode."""
    span = output_span(plan, start_ns, data.shape[1], "valid")
    if hi <= lo:
        return SeamPiece(np.empty((data.shape[0], 0), dtype=_out_dtype(data)), lo)
    if lo < span.first_index or hi > span.first_index + span.n_samples:
        raise RuntimeError(
            f"seam outputs [{lo}, {hi}) not covered by the edge window "
            f"[{span.first_index}, {span.first_index + span.n_samples}): edges too short"
        )
    out = decimate(data, start_ns, plan, "valid").data
    return SeamPiece(out[:, lo - span.first_index : hi - span.first_index], lo)


def _out_dtype(data: np.ndarray) -> type[np.generic]:
    return np.int32 if data.dtype.kind in "iub" else np.float32


def _made_up(plan: DecimationPlan, edge: Edge, *, side: str) -> Edge:
    """The neighbour's edge (``side``) that never came, made up from ``edge`` by the engine's
    extension rule (what ``mode="extend"`` feeds its filters past a record's end), as long as
    a real edge and in the place a real one would take."""
    size = edge.data.shape[1]
    span_ns = round(Fraction(size) / plan.input_rate * NS_PER_S)
    if side == TAIL:
        data = extended(edge.data, size, 0)[:, :size]
        return Edge(data, edge.starttime_ns - span_ns, edge.owner)
    return Edge(extended(edge.data, 0, size)[:, size:], edge.starttime_ns + span_ns, edge.owner)


def seam_piece(
    plan: DecimationPlan,
    key: int,
    *,
    tail: Edge | None,
    head: Edge | None,
    halves: tuple[str, ...],
) -> SeamPiece:
    """The seam outputs of the claimed ``halves`` (``left``, ``right``, or both, adjacent) at
    boundary ``key``.

    With both edges the outputs are exact: the valid outputs of tail+head, which equal what
    decimating the unbroken record gives. With one edge (a neighbour that never came), the
    missing edge is made up by the engine's edge extension and the half computed from the pair
    the same way. Not with ``mode="extend"`` on the one edge: that gives only the grid points
    within the edge's own samples, and a file off the input grid starts (ends) up to half an
    input period after (before) its boundary key, so a grid point of its half can lie in
    between.
    """
    if (LEFT in halves and tail is None) or (RIGHT in halves and head is None):
        raise ValueError(f"seam {key}: halves {halves} need the edges they border")
    if tail is None and head is None:
        raise ValueError(f"seam {key}: no edge")
    if tail is None:
        assert head is not None
        tail = _made_up(plan, head, side=TAIL)
    if head is None:
        head = _made_up(plan, tail, side=HEAD)
    k_t = boundary_index(key, plan)
    start = _valid_last(plan, tail) + 1 if LEFT in halves else k_t
    stop = _valid_first(plan, head) if RIGHT in halves else k_t
    window = np.concatenate([tail.data, head.data.astype(tail.data.dtype, copy=False)], axis=1)
    return _take(plan, window, tail.starttime_ns, lo=start, hi=stop)
