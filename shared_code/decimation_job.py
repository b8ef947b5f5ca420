"""Decimate one file in bounded memory, joining seamlessly with its neighbours.

A file is read through a streaming :class:`~shared_code.formats.streaming.Source`: first the
edges of every selected trace (a few hundred samples each), then the traces in chunks of
about :data:`CHUNK_BYTES` of working memory, each chunk decimated and handed to a streaming
writer. Nothing holds the whole file, so peak memory is set by the chunk size, not the file.

Each block of traces is decimated in ``valid`` mode (only outputs whose filter support lies
inside the file); the outputs near the file's two boundaries come from the seam mechanism in
:mod:`shared_code.seams`, and the claimed seam halves are joined to the interior so the
decimated file is one contiguous run on the output grid. A block too short to have an
interior (shorter than two edges) is decimated in ``extend`` mode without seams.

A block whose rate has no ratio to the target that the decimator can resample (see
:func:`shared_code.dsp.max_up`) is decimated as if sampled at the nearest rate that has one,
when that moves its last sample by at most :data:`SNAP_DRIFT_FRACTION` of an output period
(:func:`snap_rate`), and refused otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from shared_code.dsp import DecimationPlan, Mode, decimate, design, max_up, output_span
from shared_code.fields import FieldConfig
from shared_code.formats import BlockLayout, BlockSource, FormatError, Source, Writer
from shared_code.seams import (
    HEAD,
    LEFT,
    RIGHT,
    TAIL,
    Edge,
    SeamPiece,
    SeamStore,
    boundary_key,
    edge_length,
    seam_piece,
    stream_signature,
    trace_columns,
)
from shared_code.waveforms import NS_PER_S, TraceMeta, exact_rate

log = logging.getLogger(__name__)

#: Working memory per chunk of traces (bytes of float64 input): the knob that bounds peak RSS.
CHUNK_BYTES = 48 * 1024 * 1024

#: Largest timing error that snapping an input rate may cause, as a fraction of the output
#: sample period: the last sample of a block moves by at most this. 1 %: a tone at the edge
#: of the protected band (0.4 × the output rate) shifts in phase by at most 2π × 0.4 × 0.01
#: = 0.025 rad (1.4°), and an onset read to a tenth of a sample moves by a tenth of that. At
#: 20 Hz it is 0.5 ms; the real cases move far less: GSE1's drift-corrected 124.9999924 Hz
#: (3000 samples, snapped to 125 Hz) by 1.5 µs, SEISAN's 75.19 Hz (3675) by 0.08 ms.
SNAP_DRIFT_FRACTION = Fraction(1, 100)


@dataclass(frozen=True)
class RateSnap:
    """An input rate moved to one the decimator can resample from, and what that costs.

    Rates in Hz; ``drift_s`` is how far (s) the block's last sample moves:
    ``n_samples × |1/snapped_rate − 1/true_rate|`` (its first sample keeps its time).
    """

    true_rate: Fraction
    snapped_rate: Fraction
    output_rate: Fraction
    n_samples: int
    drift_s: Fraction

    @property
    def allowed_s(self) -> Fraction:
        """The drift accepted: :data:`SNAP_DRIFT_FRACTION` of the output sample period, s."""
        return SNAP_DRIFT_FRACTION / self.output_rate

    @property
    def acceptable(self) -> bool:
        # Nothing is resampled when the snapped rate is at or below the target: the block
        # passes through with its own rate, so no time moves.
        return self.snapped_rate <= self.output_rate or self.drift_s <= self.allowed_s


def snap_rate(rate_hz: float, target_hz: float, n_samples: int) -> RateSnap | None:
    """The nearest rate to ``rate_hz`` (Hz) whose ratio to ``target_hz`` :func:`design` can
    resample (``Fraction.limit_denominator`` with the largest upsampling factor accepted),
    or None when ``rate_hz`` itself can be: 39.26 → 20 Hz is ×1000/1963 and needs none, the
    drift-corrected 124.9999924 Hz of a GSE1 file (×1315790/8223687) becomes 125 Hz. The
    result says how far that moves the last of ``n_samples``; whether that is acceptable is
    :attr:`RateSnap.acceptable`. ``design`` itself stays a pure function of the rate pair.
    """
    fs_in, fs_out = exact_rate(rate_hz), exact_rate(target_hz)
    ratio = fs_in / fs_out
    if fs_in <= fs_out or ratio.denominator <= max_up(ratio):
        return None
    snapped = ratio.limit_denominator(max_up(ratio))
    # A snapped ratio a hair larger than the true one may allow a smaller factor.
    while snapped.denominator > max_up(snapped):
        snapped = ratio.limit_denominator(snapped.denominator - 1)
    fs_snap = snapped * fs_out
    drift = n_samples * abs(1 / fs_snap - 1 / fs_in)
    return RateSnap(fs_in, fs_snap, fs_out, n_samples, drift)


def _decimation_rate(block: BlockSource, target_rate_hz: float, name: str, index: int) -> float:
    """The rate (Hz) ``block`` is decimated from: its own, or the snapped one (logged) when
    its ratio to the target cannot be resampled exactly and snapping moves its last sample
    by at most :data:`SNAP_DRIFT_FRACTION` of an output period; refused (``FormatError``
    naming the blob, both rates and the drift) when it would move it more."""
    snap = snap_rate(block.sampling_rate, target_rate_hz, block.n_samples)
    if snap is None:
        return block.sampling_rate
    true_hz, snapped_hz = float(snap.true_rate), float(snap.snapped_rate)
    drift_ms, allowed_ms = float(snap.drift_s) * 1e3, float(snap.allowed_s) * 1e3
    if not snap.acceptable:
        raise FormatError(
            name,
            f"block {index}: sampling rate {true_hz!r} Hz has no ratio to the target "
            f"{target_rate_hz:g} Hz that the decimator can resample; the nearest that it can, "
            f"{snapped_hz!r} Hz, would move the last of the block's {snap.n_samples} samples "
            f"by {drift_ms:.3g} ms, more than the {allowed_ms:.3g} ms allowed "
            f"({float(SNAP_DRIFT_FRACTION):.0%} of an output sample)",
        )
    log.warning(
        "%s: block %d: sampling rate %r Hz decimated as %r Hz (the nearest rate with a ratio "
        "to %g Hz the decimator can resample): the last of %d samples moves by %.3g ms "
        "(allowed %.3g ms)",
        name, index, true_hz, snapped_hz, target_rate_hz, snap.n_samples, drift_ms, allowed_ms,
    )  # fmt: skip
    return snapped_hz


@dataclass
class BlockJob:
    """How one block of the source becomes one block of the decimated file."""

    source: BlockSource
    rows: list[int]
    traces: list[TraceMeta]
    plan: DecimationPlan
    mode: Literal["valid", "extend", "passthrough"]
    head: SeamPiece | None
    tail: SeamPiece | None
    first_index: int
    n_samples: int
    dtype: np.dtype

    @property
    def passthrough(self) -> bool:
        return self.plan.passthrough

    @property
    def starttime_ns(self) -> int:
        if self.passthrough:
            return self.source.starttime_ns
        return round(Fraction(self.first_index) / self.plan.output_rate * NS_PER_S)

    @property
    def sampling_rate(self) -> float:
        return self.source.sampling_rate if self.passthrough else self.plan.output_rate_hz

    def layout(self) -> BlockLayout:
        return BlockLayout(
            traces=self.traces,
            sampling_rate=self.sampling_rate,
            starttime_ns=self.starttime_ns,
            n_samples=self.n_samples,
            dtype=self.dtype,
        )


def _edge_start(block: BlockSource, offset: int, rate: Fraction) -> int:
    """Time (ns) of sample ``offset`` of ``block`` at ``rate`` Hz."""
    return block.starttime_ns + round(Fraction(offset) / rate * NS_PER_S)


def _end_ns(block: BlockSource) -> int:
    return _edge_start(block, block.n_samples, exact_rate(block.sampling_rate))


def _claim_halves(store: SeamStore, key: int, owner: str, order: tuple[str, str]) -> list[str]:
    # The file after a boundary takes the right half first, the file before it the left half
    # first, and a second half only after its first: what a file emits always touches its
    # own interior, so each decimated file stays one contiguous run.
    got: list[str] = []
    for half in order:
        if not store.claim(key, half, owner):
            break
        got.append(half)
    return sorted(got, key=(LEFT, RIGHT).index)


def plan_block(
    block: BlockSource,
    cfg: FieldConfig,
    target_rate_hz: float,
    share_root: Path,
    owner: str,
    *,
    name: str,
    index: int,
) -> BlockJob | None:
    """Select the field's traces of ``block`` (block ``index`` of the file ``name``), write
    its edges, claim its seams, and size its output. Returns None when the selection keeps
    no trace of this block."""
    keep = set(cfg.select(max(t.index for t in block.traces) + 1))
    rows = [i for i, t in enumerate(block.traces) if t.index in keep]
    if not rows:
        return None
    traces = [block.traces[i] for i in rows]
    # A snapped rate is the block's rate from here on: plan, seam stream and keys, edges.
    rate = _decimation_rate(block, target_rate_hz, name, index)
    plan = design(rate, target_rate_hz)
    n = block.n_samples
    if plan.passthrough:
        return BlockJob(block, rows, traces, plan, "passthrough", None, None, 0, n, block.dtype)
    out_dtype = np.dtype(np.int32 if block.is_integer else np.float32)
    size = edge_length(plan)
    if n < 2 * size + 1:
        span = output_span(plan, block.starttime_ns, n, "extend")
        log.warning(
            "%s: block of %d samples is shorter than two seam edges (%d): decimated alone, "
            "edges extended, no seamless join",
            cfg.name, n, 2 * size,
        )  # fmt: skip
        return BlockJob(
            block, rows, traces, plan, "extend", None, None, span.first_index,
            span.n_samples, out_dtype,
        )  # fmt: skip

    store = SeamStore(share_root, cfg.name, stream_signature(cfg.name, plan.input_rate, traces))
    head_samples, tail_samples = block.edges(size)
    head = Edge(head_samples[rows], block.starttime_ns, owner)
    # The tail's time in the block's (snapped) sample frame, the frame of its interior, so
    # that the seam's outputs abut the interior; the end's key from the block's own rate,
    # the frame of the next file's start time.
    tail = Edge(tail_samples[rows], _edge_start(block, n - size, plan.input_rate), owner)
    start_key = boundary_key(block.starttime_ns, plan.input_rate)
    end_key = boundary_key(_end_ns(block), plan.input_rate)
    meta = json.dumps(
        {
            "field": cfg.name,
            "input_rate_hz": plan.input_rate_hz,
            "output_rate_hz": target_rate_hz,
            "traces": trace_columns(traces),
        }
    )
    # Both sides write before they look: of two neighbours running at once, at least one
    # sees the other's edge.
    store.put_edge(start_key, HEAD, head, meta)
    store.put_edge(end_key, TAIL, tail, meta)

    head_piece = tail_piece = None
    partner = store.get_edge(start_key, TAIL)
    if partner is not None and partner.data.shape == head.data.shape:
        halves = _claim_halves(store, start_key, owner, (RIGHT, LEFT))
        if halves:
            head_piece = seam_piece(plan, start_key, tail=partner, head=head, halves=tuple(halves))
    partner = store.get_edge(end_key, HEAD)
    if partner is not None and partner.data.shape == tail.data.shape:
        halves = _claim_halves(store, end_key, owner, (LEFT, RIGHT))
        if halves:
            tail_piece = seam_piece(plan, end_key, tail=tail, head=partner, halves=tuple(halves))

    interior = output_span(plan, block.starttime_ns, n, "valid")
    first = interior.first_index
    if head_piece is not None:
        if head_piece.first_index + head_piece.n_samples != first:
            raise RuntimeError(f"{cfg.name}: head seam does not abut the interior (bug)")
        first = head_piece.first_index
    if (
        tail_piece is not None
        and tail_piece.first_index != interior.first_index + interior.n_samples
    ):
        raise RuntimeError(f"{cfg.name}: tail seam does not abut the interior (bug)")
    total = interior.n_samples + sum(p.n_samples for p in (head_piece, tail_piece) if p is not None)
    return BlockJob(block, rows, traces, plan, "valid", head_piece, tail_piece, first, total,
                    out_dtype)  # fmt: skip


def plan_file(
    source: Source, cfg: FieldConfig, target_rate_hz: float, share_root: Path, owner: str
) -> list[BlockJob]:
    """One job per source block that keeps at least one trace."""
    jobs = [
        plan_block(b, cfg, target_rate_hz, share_root, owner, name=source.source, index=i)
        for i, b in enumerate(source.blocks)
    ]
    return [job for job in jobs if job is not None]


def _chunks(job: BlockJob, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    per_trace = max(1, job.source.n_samples * 8)
    step = max(1, chunk_bytes // per_trace)
    for c0 in range(0, len(job.rows), step):
        yield c0, min(len(job.rows), c0 + step)


def run_jobs(jobs: list[BlockJob], writer: Writer, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Decimate every job chunk by chunk and hand the output rows to ``writer``.

    Each chunk's output row is [head seam piece | decimated interior | tail seam piece],
    assembled in place in one buffer kept across chunks.
    """
    scratch = np.empty(0, np.uint8)
    for out_index, job in enumerate(jobs):
        for c0, c1 in _chunks(job, chunk_bytes):
            rows = job.rows[c0:c1]
            if job.passthrough:
                raw = job.source.rows(rows[0], rows[-1] + 1)
            else:  # the decimator converts a few traces at a time from the stored samples
                raw = job.source.stored_rows(rows[0], rows[-1] + 1)
            if len(rows) != raw.shape[0] or rows[-1] - rows[0] + 1 != len(rows):
                raw = raw[[r - rows[0] for r in rows]]
            if job.passthrough:
                writer.write_rows(out_index, c0, raw)
                continue
            mode: Mode = "valid" if job.mode == "valid" else "extend"
            nbytes = (c1 - c0) * job.n_samples * job.dtype.itemsize
            if scratch.size < nbytes:
                scratch = np.empty(nbytes, np.uint8)
            out = scratch[:nbytes].view(job.dtype).reshape(c1 - c0, job.n_samples)
            lo, hi = 0, job.n_samples
            if job.head is not None:
                lo = job.head.n_samples
                out[:, :lo] = job.head.data[c0:c1]
            if job.tail is not None:
                hi -= job.tail.n_samples
                out[:, hi:] = job.tail.data[c0:c1]
            decimate(raw, job.source.starttime_ns, job.plan, mode, out=out[:, lo:hi])
            writer.write_rows(out_index, c0, out)
