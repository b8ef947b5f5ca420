"""Rounding-error bounds of the decimator, for test tolerances that hold on any CPU.

BLAS results depend on the kernel OpenBLAS picks for the CPU (AVX-512 "SkylakeX", AVX2
"Haswell", AVX "Sandybridge", ...): the products are summed in other orders and blocks, so
float32 results differ in the last bits between machines. A tolerance taken from one machine's
result fails on another; these bounds hold for every summation order.

A sum of ``n`` products computed in floating point, in any order and with or without FMA,
errs by at most ``γ_n · Σ|a_j x_j|`` with ``γ_n = n·u / (1 - n·u)`` and ``u`` the unit
roundoff (2⁻²⁴ for float32, 2⁻⁵³ for float64): Higham, *Accuracy and Stability of Numerical
Algorithms*, 2nd ed., §3.1 (eq. 3.5) and Lemma 3.1. Products with zero taps (the engine's
banded Toeplitz blocks) add exactly, so ``n`` is the number of taps an output sums; one more
term covers the taps themselves, rounded to the working precision.

For the cascade: stage ``i`` sums ``n_i`` products of its input, whose magnitude is at most
``G_1 … G_{i-1}`` times the input's (``G_j``: largest ℓ₁ norm over the stage's phases); the
error it adds, ``≤ γ_{n_i} G_1 … G_i · A``, reaches the output through the later stages with
gain ``≤ G_{i+1} …``. Summed over the stages and with the final rounding to float32:

    |result − exact| ≤ A · G · (Σ_i γ_{n_i} + u_32)   with G = Π G_i,  A = max |input|.

Two results of the same inputs (two kernels, or a piece against the unbroken record) then
differ by at most twice that.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache

import numpy as np

from shared_code.dsp import DecimationPlan, Stage

U32 = 2.0**-24
U64 = 2.0**-53
#: Phases at which a stage's ℓ₁ norm is sampled besides its own j/up (off-grid inputs).
_EXTRA_PHASES = 64


def gamma(n: int, u: float) -> float:
    """Higham's γ_n: the relative error bound of an ``n``-term sum of products."""
    return n * u / (1 - n * u)


@cache
def _stage_gain(stage: Stage) -> float:
    """Largest Σ|taps| over the phases an output of this stage can use."""
    phases = {Fraction(j, stage.up) for j in range(stage.up)}
    phases |= {Fraction(k, _EXTRA_PHASES) for k in range(_EXTRA_PHASES)}
    # The off-grid sampling of a continuous function of the phase can miss its peak by a
    # little: 1 % margin over the sampled maximum.
    return 1.01 * max(float(np.abs(stage.phase_taps(p)[1]).sum()) for p in phases)


def gain(plan: DecimationPlan) -> float:
    """Π of the stages' ℓ₁ gains: the largest |output| per unit of max |input|."""
    out = 1.0
    for stage in plan.stages:
        out *= _stage_gain(stage)
    return out


def _terms(stage: Stage) -> int:
    # An off-grid phase can take one tap more than the on-grid one; +1 for the taps' rounding.
    return stage.taps_per_output + 2


def error_bound(
    plan: DecimationPlan, amplitude: float, work: type = np.float32, *, to_float32: bool = True
) -> float:
    """Largest |result − exact result| of decimating inputs with |x| ≤ ``amplitude``
    (counts or physical units) in ``work`` precision; ``to_float32``: the result is rounded
    to float32 at the end (what ``decimate`` returns for float input), else it is taken
    before any final rounding (integer input: before the rounding to counts)."""
    u = U32 if np.dtype(work) == np.float32 else U64
    per_stage = sum(gamma(_terms(s), u) for s in plan.stages)
    return amplitude * gain(plan) * (per_stage + (U32 if to_float32 else 0.0))


def difference_bound(plan: DecimationPlan, amplitude: float, work: type = np.float32) -> float:
    """Largest difference between two results of the same inputs (any two kernels)."""
    return 2 * error_bound(plan, amplitude, work)


def near_tie(exact: np.ndarray, bound: float) -> np.ndarray:
    """Where rounding ``exact`` to counts could go either way for a result within ``bound``
    of it: the distance to the nearest .5 is at most ``bound``. (With ``bound`` < 0.5, two
    such results round at most one count apart, and only there.)"""
    frac = exact - np.floor(exact)
    return np.abs(frac - 0.5) <= bound


def centred_amplitude(counts: np.ndarray) -> float:
    """Largest distance of a trace's counts from its midrange: the amplitude the engine's
    centred float32 path filters (it adds the midrange back in float64)."""
    x = counts.astype(np.float64)
    return float(((x.max(axis=1) - x.min(axis=1)) / 2).max()) + 1.0
