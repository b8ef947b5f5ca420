"""Fidelity of the decimation on synthetic signals: aliasing, pass band, timing, grid."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from shared_code.dsp import Mode, decimate, design
from tests.numeric_bounds import error_bound

NS = 1_000_000_000
#: An arbitrary epoch time on every grid used here (a whole second), ns.
T0 = 1_700_000_000 * NS
RATIOS = [(1000, 100), (1000, 300), (500, 200), (2000, 250), (4000, 250)]


def _times(start_ns: int, n: int, rate: float) -> np.ndarray:
    """Sample times in seconds relative to T0 (kept small for float accuracy)."""
    return (start_ns - T0) / NS + np.arange(n) / rate


def _fit(y: np.ndarray, t: np.ndarray, f: float) -> complex:
    """Least-squares complex amplitude of a tone of frequency f (Hz) in y(t)."""
    a = np.column_stack([np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t)])
    (c, s), *_ = np.linalg.lstsq(a, y, rcond=None)
    return complex(c, -s)


def _tones(freqs: np.ndarray, n: int, rate: float, start_ns: int = T0) -> np.ndarray:
    t = _times(start_ns, n, rate)
    phase = np.linspace(0.1, 2.9, freqs.size)[:, None]
    return np.cos(2 * np.pi * freqs[:, None] * t[None, :] + phase)


@pytest.mark.parametrize(("fs_in", "fs_out"), RATIOS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alias_rejection(fs_in: int, fs_out: int, dtype: type) -> None:
    """Tones from just above fs_out/2 to near fs_in/2 come out ≥ 100 dB down."""
    nyq = fs_out / 2
    freqs = np.concatenate(
        [
            nyq * np.array([1.0005, 1.02, 1.1, 1.5, 2.0, 3.3]),
            np.linspace(2 * nyq, 0.999 * fs_in / 2, 14),
        ]
    )
    x: np.ndarray = _tones(freqs, 8 * fs_in, fs_in).astype(dtype)
    res = decimate(x, T0, design(fs_in, fs_out), mode="valid")
    assert res.data.shape[1] > 4 * fs_out
    # Unit-amplitude input tones; output RMS at whatever frequency they alias to.
    rms = np.sqrt(np.mean(res.data.astype(np.float64) ** 2, axis=1))
    rejection_db = -20 * np.log10(rms * np.sqrt(2))
    assert rejection_db.min() >= 100.0, dict(
        zip(freqs.round(2), rejection_db.round(1), strict=True)
    )


@pytest.mark.parametrize(("fs_in", "fs_out"), RATIOS)
def test_passband_gain_and_phase(fs_in: int, fs_out: int) -> None:
    """Tones up to 0.8 × fs_out/2 keep their amplitude (±0.05 dB) and their phase (timing)."""
    freqs = np.linspace(0.02, 0.8, 25) * fs_out / 2
    x = _tones(freqs, 6 * fs_in, fs_in)
    res = decimate(x, T0, design(fs_in, fs_out), mode="valid")
    t_out = _times(res.starttime_ns, res.data.shape[1], fs_out)
    expected = _tones(freqs, res.data.shape[1], fs_out, res.starttime_ns)
    for i, f in enumerate(freqs):
        gain = _fit(res.data[i].astype(np.float64), t_out, f)
        ref = _fit(expected[i], t_out, f)
        gain_db = 20 * np.log10(abs(gain) / abs(ref))
        assert abs(gain_db) <= 0.05, (f, gain_db)
        # Zero phase: any delay error would show as a phase lag of 2π f Δt.
        assert abs(np.angle(gain / ref)) < 1e-4, (f, np.angle(gain / ref))


def _parabolic_peak(y: np.ndarray) -> float:
    i = int(np.argmax(y))
    a, b, c = y[i - 1], y[i], y[i + 1]
    return i + 0.5 * (a - c) / (a - 2 * b + c)


@pytest.mark.parametrize(("fs_in", "fs_out"), RATIOS)
def test_impulse_keeps_its_time(fs_in: int, fs_out: int) -> None:
    """An isolated impulse's peak stays at its time within 1 % of an output sample.

    On an output sample the composite response is symmetric about it, so the parabolic
    peak is exact. Between output samples, a 3-point parabola on a sinc-like peak is itself
    biased by up to ~9 % of a sample whatever the filter, so there the output is first
    interpolated band-limited (×32, by FFT zero-padding; it is band-limited to fs_out/2 by
    100 dB) and the parabola is fitted on the fine grid.
    """
    plan = design(fs_in, fs_out)
    n = 4 * fs_in
    ratio = Fraction(fs_in, fs_out)
    for offset in range(math.ceil(ratio) + 1):
        x = np.zeros((1, n))
        i0 = n // 2 + offset
        x[0, i0] = 1.0
        res = decimate(x, T0, plan, mode="extend")
        y = res.data[0].astype(np.float64)
        t_imp = Fraction(i0, fs_in)
        rel = (t_imp + Fraction(T0 - res.starttime_ns, NS)) * fs_out  # output samples
        if rel.denominator == 1:
            err = _parabolic_peak(y) - float(rel)
        else:
            up = 32
            fine = np.fft.irfft(np.fft.rfft(y), y.size * up) * up
            err = _parabolic_peak(fine) / up - float(rel)
        assert abs(err) <= 0.01, (offset, err)


@pytest.mark.parametrize(("fs_in", "fs_out"), RATIOS)
def test_outputs_on_absolute_grid(fs_in: int, fs_out: int) -> None:
    """Any on-grid input start gives outputs at k / fs_out exactly, in both modes."""
    plan = design(fs_in, fs_out)
    period = Fraction(NS, fs_in)
    for start_sample in (0, 1, 7, 123_457):
        start_ns = T0 + int(start_sample * period)
        modes: tuple[Mode, ...] = ("valid", "extend")
        for mode in modes:
            res = decimate(np.zeros((1, 3 * fs_in)), start_ns, plan, mode=mode)
            k = round(Fraction(res.starttime_ns, NS) * fs_out)
            assert res.starttime_ns == round(Fraction(k * NS, fs_out))
            if mode == "extend":
                # First grid point at or after the input start, last before its end.
                assert Fraction(k, fs_out) >= Fraction(start_ns, NS)
                assert Fraction(k - 1, fs_out) < Fraction(start_ns, NS)
                end = Fraction(start_ns, NS) + Fraction(3 * fs_in, fs_in)
                assert Fraction(k + res.data.shape[1] - 1, fs_out) < end
                assert Fraction(k + res.data.shape[1], fs_out) >= end


@pytest.mark.parametrize(("fs_in", "fs_out"), [(1000, 100), (1000, 300), (500, 200)])
def test_off_grid_input_is_interpolated_onto_absolute_grid(fs_in: int, fs_out: int) -> None:
    """Input starting 0.3 samples off its grid: outputs still on k / fs_out, values right.

    The first stage evaluates the windowed sinc at the fractional offset (a band-limited
    fractional delay), so a pass-band signal sampled off-grid decimates to its values at the
    absolute output times.
    """
    plan = design(fs_in, fs_out)
    start_ns = T0 + round(0.3 * NS / fs_in)
    freqs = np.linspace(0.05, 0.8, 12) * fs_out / 2
    x = _tones(freqs, 5 * fs_in, fs_in, start_ns)
    res = decimate(x, start_ns, plan, mode="valid")
    k = round(Fraction(res.starttime_ns, NS) * fs_out)
    assert res.starttime_ns == round(Fraction(k * NS, fs_out))
    expected = _tones(freqs, res.data.shape[1], fs_out, res.starttime_ns)
    # The ns rounding of 1/fs_out for 300 Hz is ≤ 0.5 ns: negligible at these frequencies.
    err = np.abs(res.data - expected).max()
    assert err < 2e-5, err


def test_rational_ratio_output_rate_and_count() -> None:
    for fs_in, fs_out in [(1000, 300), (500, 200), (4000, 300)]:
        plan = design(fs_in, fs_out)
        res = decimate(np.ones((2, 10 * fs_in), np.float32), T0, plan, mode="extend")
        assert res.sampling_rate_hz == fs_out
        assert res.data.shape == (2, 10 * fs_out)
        # Every phase of the polyphase filter has unit DC gain: a constant stays constant.
        np.testing.assert_allclose(res.data, 1.0, rtol=0, atol=error_bound(plan, 1.0))
