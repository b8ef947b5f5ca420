"""Filter design: stage plans, composite response on a dense grid, cold-start imports."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from shared_code.dsp import design, frequency_response

ROOT = Path(__file__).resolve().parent.parent

RATIOS = [
    (1000, 100),
    (1000, 300),
    (500, 200),
    (2000, 250),
    (1000, 100),
    (4000, 250),
    (4000, 100),
    (4000, 300),
    (1000, 500),
    (2000, 200),
]


@pytest.mark.parametrize(("fs_in", "fs_out"), RATIOS)
def test_composite_response_meets_spec(fs_in: int, fs_out: int) -> None:
    """≥ 100 dB from fs_out/2 to fs_in/2; within ±0.05 dB up to 0.8 × fs_out/2."""
    plan = design(fs_in, fs_out)
    nyq = fs_out / 2
    stop = np.linspace(nyq, fs_in / 2, 40_000)
    passband = np.linspace(0.0, 0.8 * nyq, 4_000)
    att = -20 * np.log10(frequency_response(plan, stop).max())
    ripple = np.abs(20 * np.log10(frequency_response(plan, passband))).max()
    assert att >= 100.0, f"{fs_in}->{fs_out}: {att:.1f} dB"
    assert ripple <= 0.05, f"{fs_in}->{fs_out}: {ripple:.4f} dB"
    assert plan.stopband_attenuation_db >= 100.0
    assert plan.passband_ripple_db <= 0.05


def test_stage_chains_are_multistage_and_exact() -> None:
    plan = design(1000, 100)
    assert [(s.up, s.down) for s in plan.stages] == [(1, 5), (1, 2)]
    assert plan.stages[-1].output_rate == 100
    rational = design(1000, 300)
    assert rational.stages[-1].up == 3
    assert rational.stages[-1].output_rate == 300
    # Every stage is odd-length and centred: integer stages have integer half-widths.
    assert all(s.half_width.denominator == 1 for s in plan.stages)


def test_support_is_sum_of_stage_half_widths() -> None:
    plan = design(1000, 100)
    expected = sum((s.half_width / s.input_rate for s in plan.stages), Fraction(0))
    assert plan.support == expected
    assert plan.support_ns == int(expected * 1_000_000_000)
    assert plan.support_samples == int(np.ceil(float(expected) * 1000))


def test_design_is_cached() -> None:
    assert design(1000.0, 100.0) is design(1000, 100)


def test_passthrough_plans() -> None:
    assert design(100, 100).passthrough
    assert design(50, 100).passthrough
    assert design(100, 100).stages == ()
    assert not design(1000, 100).passthrough


def test_unreasonable_ratio_is_refused() -> None:
    with pytest.raises(ValueError, match="upsampling"):
        design(1000, 333.333)
    with pytest.raises(ValueError, match="positive"):
        design(1000, 0)


def test_taps_are_symmetric_and_unit_gain() -> None:
    for stage in design(1000, 100).stages:
        first, taps = stage.phase_taps(Fraction(0))
        assert first == -int(stage.half_width)
        np.testing.assert_allclose(taps, taps[::-1], rtol=0, atol=1e-17)
        assert abs(taps.sum() - 1) < 1e-14


def test_import_is_cheap_and_scipy_free() -> None:
    """The engine must not pull in scipy.signal or obspy at import (cold start)."""
    code = (
        "import sys; import shared_code.dsp; "
        "bad = [m for m in ('scipy', 'obspy', 'matplotlib') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
