"""Rates whose ratio to the target does not reduce to a small fraction: 39.26 → 20 Hz.

39.26 Hz (Apollo ALSEP) over 20 Hz is ×1000/1963: one polyphase stage with 1000 phases. The
check is against an exact band-limited signal: tones below 0.4 × 20 Hz sampled at 39.26 Hz
must come out as the same tones sampled on the absolute 20 Hz grid, within a bound derived
from the filter (its passband deviation and what it lets through of the input's images) and
the float rounding (tests/numeric_bounds.py).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from shared_code.dsp import decimate, design, engine, max_up
from shared_code.dsp.design import MAX_UP, Stage, stage_impulse_response
from tests.numeric_bounds import error_bound

NS = 1_000_000_000
FS_IN = Fraction(3926, 100)  # 39.26 Hz
FS_OUT = Fraction(20)
T0 = Fraction(1_700_000_000)  # s, a reference near the inputs, for float-accurate phases


def _image_gains(stage: Stage, f: float) -> np.ndarray:
    """``H(f + k·fs_in)`` for k = 0 … up-1: the stage's equivalent filter at ``up`` × the
    input rate (all its phases interleaved, DC gain 1) at the tone and at its images.

    An output at an on-grid phase is Σ_k H(f + k·fs_in) e^{2πi (f + k fs_in) t} for an input
    e^{2πi f t} (the polyphase sum over the zero-stuffed input): k = 0 is the tone times the
    passband gain, the others are its images, which the filter must reject. The sum is one
    ``up``-point FFT of the filter folded modulo ``up``:
    H(f + k fs_in) = Σ_r e^{-2πi k r / up} Σ_{m ≡ r} h[m] e^{-2πi f m / fs_up}.
    """
    h = stage_impulse_response(stage) / stage.up
    half = (h.size - 1) // 2
    m = np.arange(-half, half + 1)
    fs_up = float(stage.input_rate) * stage.up
    folded = np.zeros(stage.up, complex)
    np.add.at(folded, m % stage.up, h * np.exp(-2j * np.pi * f * m / fs_up))
    return np.fft.fft(folded)


def test_39_26_to_20_hz_is_one_exact_rational_stage() -> None:
    plan = design(39.26, 20.0)
    [stage] = plan.stages
    assert (stage.up, stage.down) == (1000, 1963)
    assert plan.stopband_attenuation_db >= 100.0
    assert plan.passband_ripple_db <= 0.05


def test_39_26_hz_tones_come_out_on_the_absolute_20_hz_grid() -> None:
    """Tones at 0.3 … 7.9 Hz (< 0.4 × 20 Hz), one per trace, amplitude 1, sampled at 39.26 Hz
    from a start on the input's own absolute grid (so every output uses one of the 1000
    phases j/1000 whose response the bound is computed from)."""
    plan = design(float(FS_IN), float(FS_OUT))
    [stage] = plan.stages
    freqs = np.array([0.3, 1.7, 4.1, 6.3, 7.9])
    phases = np.linspace(0.2, 2.8, freqs.size)
    first = math.ceil(T0 * FS_IN) + 12_345  # absolute input sample index of x[:, 0]
    n = 120 * 40  # about two minutes
    t_in = np.array([float(Fraction(first + i) / FS_IN - T0) for i in range(n)])
    x = np.cos(2 * np.pi * freqs[:, None] * t_in[None, :] + phases[:, None])
    start_ns = round(Fraction(first) / FS_IN * NS)  # within 0.5 ns: taken as on the grid
    res = decimate(x, start_ns, plan, mode="valid")
    k0 = round(Fraction(res.starttime_ns, NS) * FS_OUT)
    assert res.starttime_ns == round(Fraction(k0, 1) / FS_OUT * NS)
    assert res.data.shape == (freqs.size, pytest.approx(n / 39.26 * 20, abs=2 * 140))
    t_out = np.array([float(Fraction(k0 + i) / FS_OUT - T0) for i in range(res.data.shape[1])])
    want = np.cos(2 * np.pi * freqs[:, None] * t_out[None, :] + phases[:, None])
    rounding = error_bound(plan, 1.0, np.float64)  # float64 work, float32 result
    for i, f in enumerate(freqs):
        gains = _image_gains(stage, f)
        # Passband deviation of the tone + everything its images let through + rounding.
        bound = abs(gains[0] - 1) + np.abs(gains[1:]).sum() + rounding
        err = np.abs(res.data[i].astype(np.float64) - want[i]).max()
        assert err <= bound, (f, err, bound)
    # The bound is the filter's own response, not slack: about 10⁻⁵ of the amplitude, where
    # a wrong grid or rate costs percents (a 0.01-sample time error at 7.9 Hz is 2.5 %).
    assert bound < 1e-4


def test_larger_factors_are_bounded_by_the_kernel_size() -> None:
    """×1000 is accepted while up × down stays within MAX_RATIONAL_TAPS; 200.02 → 20 Hz
    (×1000/10001) would need an 80 MB kernel and is refused; integer ratios always pass."""
    assert max_up(Fraction(1963, 1000)) == MAX_UP
    with pytest.raises(ValueError, match=r"upsampling by 1000 \(> 457\)"):
        design(200.02, 20.0)
    assert design(200.0, 20.0).stages[0].up == 1
    assert max_up(Fraction(10**8)) == 1


def test_kernel_cache_stays_within_its_byte_budget() -> None:
    """Every off-grid start of a 39.26 Hz record needs its own 16 MB kernel; the cache keeps
    at most _KERNEL_CACHE_BYTES of them, not 128."""
    plan = design(39.26, 20.0)
    x = np.random.default_rng(1).standard_normal((2, 800)).astype(np.float32)
    for i in range(8):
        decimate(x, 1_700_000_000 * NS + 1_000_000 * i + 777, plan)
    held = sum(k.taps.nbytes for k in engine._kernels.values())
    assert held <= engine._KERNEL_CACHE_BYTES
    big = [k for k in engine._kernels.values() if k.taps.nbytes > 8 << 20]
    assert 1 <= len(big) < 8


def test_39_26_hz_alias_rejection() -> None:
    """Tones from just above 10 Hz (the output Nyquist) to near 19.63 Hz (the input's) come
    out ≥ 100 dB down, in float32 and float64."""
    plan = design(float(FS_IN), float(FS_OUT))
    freqs = np.array([10.005, 10.2, 11.0, 13.0, 15.5, 18.0, 19.5, 19.62])
    n = 240 * 40
    t = np.arange(n) / float(FS_IN)
    x = np.cos(2 * np.pi * freqs[:, None] * t[None, :] + 0.3)
    for dtype in (np.float64, np.float32):
        res = decimate(x.astype(dtype), 1_700_000_000 * NS, plan, mode="valid")
        rms = np.sqrt(np.mean(res.data.astype(np.float64) ** 2, axis=1))
        rejection_db = -20 * np.log10(rms * np.sqrt(2))
        assert rejection_db.min() >= 100.0, dict(zip(freqs, rejection_db.round(1), strict=True))
