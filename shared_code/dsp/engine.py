"""Polyphase decimation of trace blocks onto the absolute grid of the output rate.

Time bookkeeping is exact (``fractions.Fraction`` seconds); only the multiply-adds are
floating point. Stage ``i`` maps outputs ``k`` (absolute index: time ``k / fs_i``) to the
fractional input position ``p(k) = (k / fs_i - origin) × fs_{i-1}``, where ``origin`` is the
time of input sample 0 (the record start for stage 1, time 0 for later stages, whose inputs
are indexed by their own absolute ``k``). Output ``k`` uses the input samples ``n`` with
``|n - p(k)| ≤ W``.

The multiply-adds are cast as matrix products so that BLAS does them: each trace is cut into
rows of ``S`` input samples, one row per ``B`` consecutive outputs (``S = B × down / up``), and
``Y = Σ_q X[q:] @ T_q`` where ``T`` (``Q·S × B``) holds the taps of the ``B`` outputs at their
offsets (a banded Toeplitz block). Rows of all traces of a channel block are stacked into one
matrix, so each product is one large GEMM; the few rows that straddle two traces are garbage
and are dropped. No work is spent on the samples that decimation discards.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from shared_code.dsp.design import DecimationPlan, Stage, design
from shared_code.waveforms import NS_PER_S, Block

Mode = Literal["valid", "extend"]
Extension = Literal["odd", "even", "edge", "zero"]

#: Default rule for the missing input beyond the record's edges in ``mode="extend"``: even
#: reflection about the edge sample, ``x[-j] = x[j]``. It keeps the value continuous and the
#: extension has the same statistics and spectrum as the data next to the edge, so nothing
#: new enters the band. Odd reflection (``2 x[0] - x[j]``) also keeps the slope but turns the
#: noise of the single edge sample into a doubled step; holding the edge value turns it into
#: a plain step; zeros put the DC offset of raw counts on the edge. Measured on synthetic
#: seismic records (DC offset + microseism + red and white noise, 1000 → 100 Hz), the RMS edge
#: error relative to the signal was even 1.0e-3, edge 1.8e-3, odd 3.4e-3, zero 5.0e-2
#: (``tests/test_dsp_edges.py`` keeps checking the order).
DEFAULT_EXTENSION: Extension = "even"

#: Largest distance (counts) from a trace's midrange filtered in float32. Up to it float32
#: keeps every count exact, and its rounding through the cascade stays at ≤ 0.004 count RMS
#: (≤ 0.06 count at worst; measured at full scale for 1000→100, 1000→300 and 4000→250 Hz):
#: under 2 % of the 0.29-count RMS that rounding the output to integer counts adds anyway, so
#: the counts differ from float64's only at rounding ties (0.2–0.3 % of samples, by one
#: count). Louder traces use float64. float32 halves the work: twice the lanes per product.
FLOAT32_COUNTS = 1 << 18

#: Times within this many ns of the input's own sample grid are taken as on it: sample
#: periods that are not whole ns (e.g. 3 kHz) get rounded start times.
GRID_TOLERANCE_NS = 1

#: Channels are processed in blocks whose work buffer is about this many bytes, so that a
#: block's rows stay in cache across the Q matrix products. Measured on one 100-trace chunk
#: (1000 → 100 Hz, in-process, interleaved): 1 MiB 5-10 % faster than 2 MiB, 256 KiB and
#: 4 MiB slower still (per-block overhead below, cache misses above).
_BLOCK_BYTES = 1 << 20

#: GEMM throughput (relative) by number of output columns B (the largest key ≤ B applies);
#: measured with OpenBLAS (SkylakeX kernel): narrow products waste the vector units, and
#: B = 16 fills a 512-bit register of float32 (1000→100 Hz, 1000 ch × 60 s: 0.108 s with
#: B = 16 for the ÷5 stage against 0.13 s with B = 8; float64 alike or slightly better).
_GEMM_EFFICIENCY = {4: 0.45, 6: 0.7, 8: 1.0, 16: 1.5}


class OutputSpan(NamedTuple):
    """Output samples ``first_index … first_index + n_samples - 1`` of the absolute grid.

    ``first_index`` k is absolute (time ``k / fs_out`` s since the epoch); ``starttime_ns``
    is that time rounded to the nearest ns.
    """

    first_index: int
    n_samples: int
    starttime_ns: int


class Decimated(NamedTuple):
    """The result of :func:`decimate`.

    ``data`` is traces × samples (int32 counts for integer input, float32 otherwise; the
    input array itself when ``passthrough``), ``starttime_ns`` the time of its first sample,
    ``sampling_rate_hz`` its rate. ``passthrough`` says the input was already at or below the
    target rate and was returned unchanged.
    """

    data: np.ndarray
    starttime_ns: int
    sampling_rate_hz: float
    passthrough: bool


def decimate(
    data: np.ndarray,
    starttime_ns: int,
    plan: DecimationPlan,
    mode: Mode = "extend",
    *,
    extension: Extension = DEFAULT_EXTENSION,
    out: np.ndarray | None = None,
) -> Decimated:
    """Anti-alias filter and downsample ``data`` (traces × samples at ``plan.input_rate_hz``).

    ``starttime_ns`` is the time of sample 0, ns since the epoch. Outputs lie on the absolute
    grid ``k / plan.output_rate_hz``; if the input is not on its own absolute grid (start not
    a whole number of input periods since the epoch, ±1 ns), the first stage interpolates
    onto it (the windowed sinc evaluated at the fractional offset: a band-limited fractional
    delay, same attenuation and ripple as on-grid).

    ``mode="valid"``: only outputs whose whole support (``±plan.support``) is inside the
    input; they equal, to float rounding, what decimating any longer record gives at the same
    times. ``mode="extend"``: every grid point in ``[start, start + n / fs_in)``; input beyond
    the edges is made up by ``extension`` (see ``DEFAULT_EXTENSION``), so the outputs within
    ``plan.support`` of an edge are approximations.

    Integer input is rounded to int32 counts (clipped to the int32 range). Block by block (a
    few traces), where every trace stays within :data:`FLOAT32_COUNTS` of its midrange, it is
    filtered in float32 around that midrange and the midrange is added back, times the
    filter's exact DC gain, in float64: the filtered values then lie within 0.06 count of
    float64's whatever the DC offset, so the counts agree but for rounding ties. Blocks with
    louder traces are filtered in float64. float32 input is filtered in float32, float64
    input in float64, both returned as float32. Memory: a few channel blocks of
    ~``_BLOCK_BYTES`` plus the output.

    ``out``, if given, receives the result (traces × :func:`output_span`'s count, int32 for
    integer input, float32 otherwise; it may be a strided view) and is returned as ``data``.
    """
    if data.ndim != 2:
        raise ValueError(f"data must be traces × samples (2-D), got shape {data.shape}")
    if mode not in ("valid", "extend"):
        raise ValueError(f"mode must be 'valid' or 'extend', got {mode!r}")
    if extension not in ("odd", "even", "edge", "zero"):
        raise ValueError(f"unknown extension rule {extension!r}")
    if plan.passthrough:
        return Decimated(data, int(starttime_ns), plan.input_rate_hz, True)

    n_traces, n_in = data.shape
    chain = _chain(plan, int(starttime_ns), n_in, mode)
    integer = data.dtype.kind in "iub"
    # By kind and size, not dtype equality: a file's big-endian float32 is float32 too.
    work = np.float32 if data.dtype.kind == "f" and data.dtype.itemsize <= 4 else np.float64
    rule: Extension = extension if mode == "extend" else "zero"
    # Integer traces may be centred and filtered in float32 (see FLOAT32_COUNTS), block by
    # block where their range allows. Zeros beyond the edges would become the midrange once
    # centred: only where they feed outputs (extend mode) does that matter, so the zero rule
    # keeps float64 there.
    centre = integer and data.size > 0 and not (mode == "extend" and rule == "zero")
    if centre:
        work = np.float32
    out_dtype = np.dtype(np.int32 if integer else np.float32)
    shape = (n_traces, chain.span.n_samples)
    if out is None:
        out = np.empty(shape, dtype=out_dtype)
    elif out.shape != shape or out.dtype != out_dtype:
        raise ValueError(f"out must be {out_dtype} of shape {shape}, got {out.dtype} {out.shape}")
    if chain.span.n_samples == 0 or n_traces == 0:
        return Decimated(out, chain.span.starttime_ns, plan.output_rate_hz, False)

    first = chain.steps[0]
    kern = first.kernel(work)
    bytes_per_trace = kern.rows_total(first.count) * kern.step * np.dtype(work).itemsize
    block = max(1, min(n_traces, _BLOCK_BYTES // max(1, bytes_per_trace)))
    ws = _workspace()
    # Row plans once per call and dtype, not per block (their cache keys are costly to hash).
    plans: dict[type[np.floating], tuple[_Rows, ...]] = {}

    def rows_for(dtype: type[np.floating]) -> tuple[_Rows, ...]:
        if dtype not in plans:
            plans[dtype] = _row_plans(chain, np.dtype(dtype).str)
        return plans[dtype]

    gain = _dc_gain(plan, int(starttime_ns), n_in, mode, rule) if centre else np.zeros(0)
    for c0 in range(0, n_traces, block):
        c1 = min(n_traces, c0 + block)
        part = _native(data[c0:c1], ws)
        centred = _centre(part) if centre else None
        if centred is not None:
            off, largest = centred
            # Centred on the way into the first stage's float32 buffer, exactly.
            y32 = _run_chain(
                part, chain, np.float32, rule, ws, offset=off, rows_plans=rows_for(np.float32)
            )
            y = ws.get("y64", y32.shape, np.float64)
            np.multiply(off, gain, out=y)
            y += y32
            # Far from the int32 limits a centred trace cannot overshoot them: no clip pass,
            # and the rounding writes the counts straight into the output.
            if largest <= _NO_CLIP_BELOW:
                np.rint(y, out=out[c0:c1], casting="unsafe")
                continue
            np.rint(y, out=y)
            np.clip(y, np.iinfo(np.int32).min, np.iinfo(np.int32).max, out=y)
        else:
            dtype = np.float64 if integer else work
            y = _run_chain(part, chain, dtype, rule, ws, rows_plans=rows_for(dtype))
            if integer:
                np.rint(y, out=y)
                np.clip(y, np.iinfo(np.int32).min, np.iinfo(np.int32).max, out=y)
        out[c0:c1] = y
    return Decimated(out, chain.span.starttime_ns, plan.output_rate_hz, False)


class _Workspace:
    """Scratch arrays reused by the channel blocks of every call in one thread.

    Blocks are ~:data:`_BLOCK_BYTES`: above glibc's mmap threshold, so arrays allocated per
    block (or per call) come back from the kernel as fresh zeroed pages each time; measured,
    those page faults took a sixth of a chunk's time. Kept per thread (a few block-sized
    arrays, ~10 MiB); arrays larger than :data:`_WORKSPACE_KEEP_BYTES` (single traces
    longer than a block) are not kept.
    """

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, np.dtype], np.ndarray] = {}
        # The views handed out, by request: every block of a call but the last asks for the
        # same shapes, and a dict lookup is a tenth of the cost of building the view.
        self._views: dict[tuple[str, tuple[int, ...], DTypeLike], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: DTypeLike) -> np.ndarray:
        """An uninitialised C-contiguous array of this shape, reusing ``name``'s memory.

        Valid until the next ``get`` of the same name in this thread."""
        key = (name, shape, dtype)
        view = self._views.get(key)
        if view is not None:
            return view
        dt = np.dtype(dtype)
        size = math.prod(shape)
        if size * dt.itemsize > _WORKSPACE_KEEP_BYTES:
            return np.empty(shape, dt)
        flat = self._arrays.get((name, dt))
        if flat is None or flat.size < size:
            flat = np.empty(size, dt)
            self._arrays[(name, dt)] = flat
            # Views of the memory just dropped must not be handed out again.
            self._views = {k: v for k, v in self._views.items() if k[0] != name}
        view = flat[:size].reshape(shape)
        if len(self._views) < _WORKSPACE_VIEWS:
            self._views[key] = view
        return view


#: Largest scratch array a thread's workspace keeps between calls, bytes.
_WORKSPACE_KEEP_BYTES = 8 << 20
#: Views a workspace remembers (a few shapes per call; the bound keeps odd workloads small).
_WORKSPACE_VIEWS = 256
_local = threading.local()


def _workspace() -> _Workspace:
    ws = getattr(_local, "workspace", None)
    if ws is None:
        ws = _local.workspace = _Workspace()
    return ws


def _native(part: np.ndarray, ws: _Workspace) -> np.ndarray:
    """A block in native byte order, C-contiguous: a file's stored big-endian or strided
    samples are converted here, a few traces at a time, so the copy stays in cache for the
    passes that follow instead of being one more pass over the whole chunk in memory."""
    if part.dtype.isnative and part.flags.c_contiguous:
        return part
    native = ws.get("native", part.shape, part.dtype.newbyteorder("="))
    np.copyto(native, part)
    return native


#: Midranges below this many counts leave room for any overshoot of a centred trace
#: (at most 2^18 counts plus the filters' few-percent Gibbs overshoot) inside int32.
_NO_CLIP_BELOW = (1 << 31) - (1 << 21)


def _centre(part: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Per-trace midranges (traces × 1) of a block of integer traces and the largest of their
    magnitudes, or None if a trace strays more than FLOAT32_COUNTS from its midrange (then
    the block uses float64). The midranges come as float32 when every count of the block is
    exact in float32 (24-bit digitisers: always), as integers otherwise.

    The block is small (~_BLOCK_BYTES): these passes run from cache, just before the first
    stage reads the same samples; the few per-trace numbers are handled as Python ints.
    """
    his = part.max(axis=1).tolist()
    los = part.min(axis=1).tolist()
    if max(h - lo for h, lo in zip(his, los, strict=True)) > 2 * FLOAT32_COUNTS:
        return None
    mids = [(h + lo) // 2 for h, lo in zip(his, los, strict=True)]
    largest = max(abs(m) for m in mids)
    if max(*his, -min(los)) < _FLOAT32_EXACT:
        # Every count and midrange is exact in float32, and so is their difference (an
        # integer of at most FLOAT32_COUNTS): the fill may cast first and subtract in float.
        return np.array(mids, np.float32)[:, None], largest
    # Signed, and wide enough for the midrange: int32 for up to 32-bit signed counts, int64
    # for uint32/int64; subtracted in integers on the way into the float buffer.
    signed = np.int32 if part.dtype.itemsize < 4 or part.dtype == np.int32 else np.int64
    return np.array(mids, signed)[:, None], largest


#: Integers below this magnitude are exact in float32 (24-bit significand).
_FLOAT32_EXACT = 1 << 24


@lru_cache(maxsize=64)
def _dc_gain(
    plan: DecimationPlan, starttime_ns: int, n_in: int, mode: Mode, rule: Extension
) -> np.ndarray:
    """Per output, what a constant 1 comes out as (rational ratios give each output phase
    its own taps, so this is not one number); cached: every chunk of a block shares it."""
    chain = _chain(plan, starttime_ns, n_in, mode)
    gain = _run_chain(np.ones((1, n_in)), chain, np.float64, rule, _Workspace())[0].copy()
    gain.setflags(write=False)
    return gain


def decimate_block(
    block: Block,
    output_rate_hz: float,
    mode: Mode = "extend",
    *,
    extension: Extension = DEFAULT_EXTENSION,
) -> Block:
    """:func:`decimate` a :class:`Block` to ``output_rate_hz`` (Hz), keeping its trace metadata.

    Returns ``block`` itself (the same object) when its rate is already at or below the
    target: check ``result is block`` or ``design(...).passthrough`` to know.
    """
    plan = design(block.sampling_rate, output_rate_hz)
    if plan.passthrough:
        return block
    res = decimate(block.data, block.starttime_ns, plan, mode, extension=extension)
    return Block(
        data=res.data,
        sampling_rate=res.sampling_rate_hz,
        starttime_ns=res.starttime_ns,
        traces=block.traces,
    )


def extended(
    data: np.ndarray, before: int, after: int, extension: Extension = DEFAULT_EXTENSION
) -> np.ndarray:
    """``data`` (traces × samples) with ``before`` samples made up ahead of it and ``after``
    behind it by ``extension``: exactly the input :func:`decimate` feeds its filters beyond
    the record's edges in ``mode="extend"``, as an array of the same dtype. Seams use it to
    stand in for a neighbour file that never came."""
    if before < 0 or after < 0:
        raise ValueError(f"extension lengths must be >= 0, got {before}, {after}")
    if data.shape[1] == 0:
        raise ValueError("cannot extend a trace of no samples")
    out = np.empty((data.shape[0], before + data.shape[1] + after), data.dtype)
    _fill_extended(out, data, -before, extension)
    return out


def output_span(
    plan: DecimationPlan, starttime_ns: int, n_samples: int, mode: Mode = "valid"
) -> OutputSpan:
    """Which output samples :func:`decimate` returns for an input of ``n_samples`` samples.

    With ``mode="valid"`` these are exactly the outputs whose every input sample lies in the
    given input: the ones a seam can take from this piece unchanged. With ``"extend"``, the
    grid points in ``[start, start + n_samples / fs_in)``.
    """
    if plan.passthrough:
        return OutputSpan(
            round(Fraction(starttime_ns, NS_PER_S) * plan.input_rate), n_samples, starttime_ns
        )
    return _chain(plan, int(starttime_ns), n_samples, mode).span


def input_needed(
    plan: DecimationPlan, first_index: int, count: int, starttime_ns: int
) -> tuple[int, int]:
    """Input samples that outputs ``first_index … first_index + count - 1`` depend on.

    ``first_index`` is an absolute output-grid index (time ``k / fs_out``); ``starttime_ns``
    fixes the input's sample grid (the time of some input sample, ns). Returns
    ``(first, last)``, inclusive sample indices relative to that sample; they may be negative
    or past the record: that is how many samples a neighbour file must lend. With exactly
    these samples, ``mode="valid"`` returns exactly these outputs, as an unbroken record
    would. (``plan.support`` gives the same answer as a time bound: ``±support`` around the
    outputs' times always covers it.)
    """
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if plan.passthrough:
        k0 = round(Fraction(starttime_ns, NS_PER_S) * plan.input_rate)
        return first_index - k0, first_index - k0 + count - 1
    steps = _backward(plan, _snap_start(int(starttime_ns), plan.input_rate), first_index, count)
    return steps[0].in_lo, steps[0].in_hi


# --------------------------------------------------------------------------------------------
# Grid bookkeeping


@dataclass(frozen=True)
class _Step:
    """One stage's share of a call: outputs ``lo … lo + count - 1`` and where they sit."""

    stage: Stage
    origin: Fraction  # time of input index 0, s
    lo: int  # first output index (absolute k of this stage's output grid)
    count: int
    in_lo: int  # first input index used (stage-1 index may be < 0 in extend mode)
    in_hi: int  # last input index used

    def position(self, k: int) -> Fraction:
        """Fractional input position of output k."""
        s = self.stage
        return (Fraction(k) / s.output_rate - self.origin) * s.input_rate

    def kernel(self, dtype: type[np.floating]) -> _Kernel:
        p = self.position(self.lo - self.lo % _outputs_per_row(self.stage))
        return _kernel(self.stage, p - math.floor(p), np.dtype(dtype).str)


@dataclass(frozen=True)
class _Chain:
    steps: tuple[_Step, ...]
    span: OutputSpan


def _snap_start(starttime_ns: int, rate: Fraction) -> Fraction:
    """Start time in exact seconds, snapped onto the input's own grid when within 1 ns."""
    t = Fraction(starttime_ns, NS_PER_S)
    n = round(t * rate)
    on_grid = Fraction(n) / rate
    if abs(on_grid - t) * NS_PER_S <= GRID_TOLERANCE_NS:
        return on_grid
    return t


@lru_cache(maxsize=256)
def _chain(plan: DecimationPlan, starttime_ns: int, n_in: int, mode: Mode) -> _Chain:
    """Output range of every stage for an input of ``n_in`` samples starting at starttime_ns."""
    stages = plan.stages
    t0 = _snap_start(starttime_ns, plan.input_rate)
    origins = [t0] + [Fraction(0)] * (len(stages) - 1)
    fs_out = plan.output_rate
    if mode == "extend":
        lo = math.ceil(t0 * fs_out)
        hi = math.ceil((t0 + Fraction(n_in) / plan.input_rate) * fs_out) - 1
    else:
        # Forward: each stage keeps the outputs whose inputs all exist (indices a … b).
        a, b = 0, n_in - 1
        for s, origin in zip(stages, origins, strict=True):
            w = s.half_width
            lo = math.floor(s.output_rate * (origin + (a - 1 + w) / s.input_rate)) + 1
            hi = math.ceil(s.output_rate * (origin + (b + 1 - w) / s.input_rate)) - 1
            a, b = lo, hi
            if hi < lo:  # nothing valid from here on
                break
    count = max(0, hi - lo + 1)
    steps = _backward(plan, t0, lo, max(count, 1))
    if mode == "valid" and count > 0:
        assert steps[0].in_lo >= 0 and steps[0].in_hi <= n_in - 1, "valid range bookkeeping"
    start_ns = math.floor(Fraction(lo) / fs_out * NS_PER_S + Fraction(1, 2))
    return _Chain(steps, OutputSpan(lo, count, start_ns))


def _backward(plan: DecimationPlan, t0: Fraction, lo: int, count: int) -> tuple[_Step, ...]:
    """The outputs each stage must deliver, and the inputs they use, for final lo … lo+count-1."""
    stages = plan.stages
    origins = [t0] + [Fraction(0)] * (len(stages) - 1)
    steps: list[_Step] = []
    k_lo, k_hi = lo, lo + count - 1
    for s, origin in reversed(list(zip(stages, origins, strict=True))):
        step = _Step(s, origin, k_lo, k_hi - k_lo + 1, 0, 0)
        in_lo = math.ceil(step.position(k_lo) - s.half_width)
        in_hi = math.floor(step.position(k_hi) + s.half_width)
        steps.append(_Step(s, origin, k_lo, k_hi - k_lo + 1, in_lo, in_hi))
        k_lo, k_hi = in_lo, in_hi
    return tuple(reversed(steps))


# --------------------------------------------------------------------------------------------
# Kernels and the matrix-product filter


@dataclass(frozen=True)
class _Kernel:
    """Banded Toeplitz block for B consecutive outputs; see the module docstring."""

    taps: np.ndarray  # (Q, S, B)
    first: int  # input index of row 0's first sample, relative to floor(p(lo))
    step: int  # S, input samples per row
    outputs: int  # B, outputs per row

    @property
    def q(self) -> int:
        return int(self.taps.shape[0])

    def rows_total(self, count: int) -> int:
        """Rows of S samples each trace needs for ``count`` outputs."""
        return -(-count // self.outputs) + self.q - 1


@lru_cache(maxsize=256)
def _phase_taps(stage: Stage, phase: Fraction) -> tuple[int, np.ndarray]:
    return stage.phase_taps(phase)


@lru_cache(maxsize=64)
def _outputs_per_row(stage: Stage) -> int:
    """B for a stage: a multiple of ``up`` (so every row has the same phases), ≤ 32.

    Fixed per stage, not per call: rows then start at absolute output indices k ≡ 0 (mod B),
    so a given output is always computed by the same column with the same summation order,
    and pieces of a record reproduce the whole record's numbers bit for bit.
    """
    best: tuple[float, int] | None = None
    width = 2 * stage.half_width + 1
    candidates = [b for b in range(stage.up, 33, stage.up) if b >= 4] or [stage.up]
    for b in candidates:
        s = b * stage.down // stage.up
        span = math.ceil(width + Fraction((b - 1) * stage.down, stage.up))
        q = -(-span // s)
        eff = _GEMM_EFFICIENCY[max((k for k in _GEMM_EFFICIENCY if k <= b), default=4)]
        # Per output: Q·S multiply-adds at the GEMM's efficiency, plus Q accumulation passes.
        cost = q * s / eff + 4.0 * q
        if best is None or cost < best[0]:
            best = (cost, b)
    assert best is not None
    return best[1]


#: Kernels kept between calls, bytes. Most are a few kB (1000 → 100 Hz: 12 kB), but a
#: stage with a large upsampling factor has ``up`` outputs per row and a kernel of about
#: ``2 · up · down`` taps: 16 MB in float32 for 39.26 → 20 Hz (×1000/1963). Its phase
#: depends on where the record starts on its own sample grid, so every file of a stream
#: that starts off-grid may need its own: kept by count alone (128), they would pin 2 GB.
_KERNEL_CACHE_BYTES = 64 << 20
#: Kernels kept between calls, at most (the small ones: a few per rate pair and start phase).
_KERNEL_CACHE_COUNT = 128
_kernels: OrderedDict[tuple[Stage, Fraction, str], _Kernel] = OrderedDict()
_kernels_lock = threading.Lock()


def _kernel(stage: Stage, phase: Fraction, dtype: str) -> _Kernel:
    """The Toeplitz block for rows whose first output sits at input position ``phase``;
    cached, least recently used first out, within :data:`_KERNEL_CACHE_BYTES`."""
    key = (stage, phase, dtype)
    with _kernels_lock:
        kern = _kernels.get(key)
        if kern is not None:
            _kernels.move_to_end(key)
            return kern
    kern = _build_kernel(stage, phase, dtype)
    with _kernels_lock:
        _kernels[key] = kern
        held = sum(k.taps.nbytes for k in _kernels.values())
        while len(_kernels) > 1 and (
            held > _KERNEL_CACHE_BYTES or len(_kernels) > _KERNEL_CACHE_COUNT
        ):
            _, dropped = _kernels.popitem(last=False)
            held -= dropped.taps.nbytes
    return kern


def _build_kernel(stage: Stage, phase: Fraction, dtype: str) -> _Kernel:
    b = _outputs_per_row(stage)
    s = b * stage.down // stage.up
    cols: list[tuple[int, np.ndarray]] = []
    for j in range(b):
        p = phase + Fraction(j * stage.down, stage.up)
        first, taps = _phase_taps(stage, p - math.floor(p))
        cols.append((math.floor(p) + first, taps))
    a0 = min(c[0] for c in cols)
    span = max(c[0] + c[1].size for c in cols) - a0
    q = -(-span // s)
    t = np.zeros((q * s, b), dtype=np.float64)
    for j, (first, taps) in enumerate(cols):
        t[first - a0 : first - a0 + taps.size, j] = taps
    t3 = np.ascontiguousarray(t.reshape(q, s, b).astype(dtype))
    t3.setflags(write=False)
    return _Kernel(t3, a0, s, b)


def _fir(buf: np.ndarray, kern: _Kernel, count: int, ws: _Workspace, name: str) -> np.ndarray:
    """Apply ``kern`` to ``buf`` (traces × rows_total·S, C-contiguous); traces × count out
    (a view of ``ws``'s array ``name``)."""
    n_tr = buf.shape[0]
    rows = kern.rows_total(count)
    x = buf.reshape(n_tr * rows, kern.step)
    y = ws.get(name, (n_tr * rows, kern.outputs), buf.dtype)
    np.matmul(x, kern.taps[0], out=y)
    if kern.q > 1:
        tmp = ws.get("fir-tmp", y.shape, buf.dtype)
        for q in range(1, kern.q):
            # Row r of chunk q is input row r + q: shift the product, not the data.
            np.matmul(x[q:], kern.taps[q], out=tmp[:-q])
            y[:-q] += tmp[:-q]
    return y.reshape(n_tr, rows * kern.outputs)[:, :count]


def _run_chain(
    x: np.ndarray,
    chain: _Chain,
    work: type[np.floating],
    extension: Extension,
    ws: _Workspace,
    *,
    offset: np.ndarray | None = None,
    rows_plans: tuple[_Rows, ...] | None = None,
) -> np.ndarray:
    """Run every stage on a channel block, less ``offset`` (integer, per trace) if given;
    returns traces × final count in ``work`` dtype (a view of ``ws``'s memory)."""
    src: np.ndarray = x
    src_first = 0  # input index of src[:, 0]
    plans = _row_plans(chain, np.dtype(work).str) if rows_plans is None else rows_plans
    for i, (step, rows) in enumerate(zip(chain.steps, plans, strict=True)):
        buf = ws.get(f"in{i}", (src.shape[0], rows.length), work)
        if i == 0:
            _fill_extended(buf, src, rows.start - src_first, extension, offset)
        else:
            _fill_padded(buf, src, rows.start - src_first)
        src = _fir(buf, rows.kernel, step.count + rows.lead, ws, f"out{i}")[:, rows.lead :]
        src_first = step.lo
    return src


class _Rows(NamedTuple):
    """Where a step's rows start: ``lead`` outputs before ``lo`` (rows begin at an absolute
    output index k ≡ 0 mod B, see _outputs_per_row), ``start`` the input index of the first
    sample they read, ``length`` samples per trace."""

    kernel: _Kernel
    lead: int
    start: int
    length: int


#: Row plans hold their kernels: they are cached across calls (saving ~35 µs a call, a tenth
#: of decimating an 800-sample seam edge) only while every kernel is at most this many bytes
#: (a few kB for integer and small rational ratios), so that the cache pins ≤ 64 MB; larger
#: kernels (×1000/1963: 16 MB) stay under the kernel cache's byte budget alone.
_CACHED_PLAN_KERNEL_BYTES = 256 << 10


def _row_plans(chain: _Chain, dtype: str) -> tuple[_Rows, ...]:
    """Per step, its kernel and row placement: the same for every block of a call."""
    if all(_kernel_bytes(step.stage) <= _CACHED_PLAN_KERNEL_BYTES for step in chain.steps):
        return _cached_row_plans(chain, dtype)
    return _compute_row_plans(chain, dtype)


def _kernel_bytes(stage: Stage) -> int:
    """Upper bound of a stage's kernel size in float64: B columns of ≤ 2W + 1 + B·down/up
    rows (one more row of S for the alignment), 8 bytes each."""
    b = _outputs_per_row(stage)
    rows = 2 * stage.half_width + 2 + Fraction(b * stage.down, stage.up) * 2
    return 8 * b * math.ceil(rows)


@lru_cache(maxsize=64)
def _cached_row_plans(chain: _Chain, dtype: str) -> tuple[_Rows, ...]:
    return _compute_row_plans(chain, dtype)


def _compute_row_plans(chain: _Chain, dtype: str) -> tuple[_Rows, ...]:
    plans = []
    for step in chain.steps:
        lead = step.lo % _outputs_per_row(step.stage)
        kern = step.kernel(np.dtype(dtype).type)
        p = step.position(step.lo - lead)
        start = math.floor(p) + kern.first
        length = kern.rows_total(step.count + lead) * kern.step
        plans.append(_Rows(kern, lead, start, length))
    return tuple(plans)


def _fill_padded(buf: np.ndarray, src: np.ndarray, start: int) -> None:
    """buf[:, i] = src[:, start + i], zeros outside src (those feed only dropped outputs)."""
    length = buf.shape[1]
    left = min(max(-start, 0), length)
    middle = max(0, min(length - left, src.shape[1] - (start + left)))
    buf[:, :left] = 0
    buf[:, left : left + middle] = src[:, start + left : start + left + middle]
    buf[:, left + middle :] = 0


def _fill_extended(
    buf: np.ndarray,
    x: np.ndarray,
    start: int,
    rule: Extension,
    offset: np.ndarray | None = None,
) -> None:
    """buf[:, i] = x_ext[:, start + i] - offset; x_ext extends x beyond its edges by ``rule``.

    Reflections mirror about the edge *sample* (``x[-j]`` from ``x[j]``); past one full
    reflection of a short record the farthest sample is held. ``offset`` (one per trace, see
    :func:`_centre`) is subtracted exactly: integers on the way into the float buffer, or in
    float32 after an exact cast.
    """
    n = x.shape[1]
    length = buf.shape[1]
    left = min(max(-start, 0), length)  # columns before x[0]
    right = min(max(start + length - n, 0), length - left)  # columns after x[n-1]
    middle = length - left - right
    if middle > 0:
        window = x[:, start + left : start + left + middle]
        dest = buf[:, left : left + middle]
        if offset is None:
            dest[...] = window
        elif offset.dtype.kind == "f":  # exact: see _centre
            np.copyto(dest, window, casting="unsafe")
            dest -= offset
        else:
            np.subtract(window, offset, out=dest, dtype=offset.dtype, casting="unsafe")
    if rule == "zero":
        # Zeros: in valid mode these samples feed only outputs that are dropped (any finite
        # value would do), in extend mode there is no offset (see decimate).
        buf[:, :left] = 0
        buf[:, length - right :] = 0
        return
    int_or_buf = buf.dtype if offset is None else np.dtype(np.int64)
    if left > 0:
        dist = -(start + np.arange(left))  # distance from x[0], far first
        part = _extension(x, 0, np.minimum(dist, n - 1), rule, int_or_buf)
        buf[:, :left] = part if offset is None else part - offset
    if right > 0:
        dist = start + length - right + np.arange(right) - (n - 1)
        part = _extension(x, n - 1, n - 1 - np.minimum(dist, n - 1), rule, int_or_buf)
        buf[:, length - right :] = part if offset is None else part - offset


def _extension(
    x: np.ndarray, edge: int, mirror: np.ndarray, rule: Extension, dtype: np.dtype
) -> np.ndarray:
    e = x[:, edge : edge + 1].astype(dtype)
    if rule == "zero":
        return np.zeros((x.shape[0], mirror.size), dtype)
    if rule == "edge":
        return np.broadcast_to(e, (x.shape[0], mirror.size))
    m = x[:, mirror].astype(dtype)
    if rule == "even":
        return m
    return 2 * e - m
