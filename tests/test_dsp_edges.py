"""Edges and seams: ``valid`` equals the inside of a longer record; ``extend`` is bounded.

Seamless joins across files rely on the first property: a piece decimated with its
neighbours' ``plan.support`` worth of samples gives, on the valid span, the very numbers the
unbroken record gives.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from shared_code.dsp import decimate, design, input_needed, output_span
from shared_code.dsp.engine import Extension
from tests.numeric_bounds import difference_bound

NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def _seismic(n_traces: int, n: int, rate: float, seed: int = 5) -> np.ndarray:
    """Raw-count-like synthetic: DC offset + microseism + red noise + white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = rng.uniform(-5000, 5000, (n_traces, 1))
    x = x + 2000 * np.sin(
        2 * np.pi * rng.uniform(0.1, 0.3, (n_traces, 1)) * t + rng.uniform(0, 6.3, (n_traces, 1))
    )
    x = x + 3 * np.cumsum(rng.standard_normal((n_traces, n)), axis=1)
    return x + 100 * rng.standard_normal((n_traces, n))


def _k(start_ns: int, rate: float) -> int:
    return round(Fraction(start_ns, NS) * Fraction(rate))


CASES = [(1000, 100, 0.0), (1000, 300, 0.0), (500, 200, 0.0), (4000, 250, 0.0), (1000, 100, 0.3)]


@pytest.mark.parametrize(("fs_in", "fs_out", "offset"), CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32])
def test_valid_equals_inside_of_longer_record(
    fs_in: int, fs_out: int, offset: float, dtype: type
) -> None:
    plan = design(fs_in, fs_out)
    n = 12 * fs_in
    start = T0 + round(offset * NS / fs_in)
    x: np.ndarray = _seismic(4, n, fs_in).astype(dtype)
    whole = decimate(x, start, plan, mode="valid")
    k_whole = _k(whole.starttime_ns, fs_out)
    for a, b in [(0, n // 2), (1, n // 2 + 7), (n // 3 + 3, n - 5), (2 * fs_in + 1, 6 * fs_in)]:
        piece_start = start + round(a * NS / fs_in)
        piece = decimate(x[:, a:b], piece_start, plan, mode="valid")
        span = output_span(plan, piece_start, b - a, "valid")
        assert (span.starttime_ns, span.n_samples) == (piece.starttime_ns, piece.data.shape[1])
        assert span.n_samples > 0
        k0 = span.first_index - k_whole
        ref = whole.data[:, k0 : k0 + span.n_samples]
        assert ref.shape == piece.data.shape
        if dtype is np.int32:
            # Float rounding before the round-to-counts may flip a .5 case: ≤ 1 count.
            assert np.abs(piece.data.astype(np.int64) - ref).max() <= 1
        else:
            # Usually bit-identical (rows start at k ≡ 0 mod B in every call); OpenBLAS picks
            # size- and CPU-dependent kernels, though, so sums may differ in the last bits.
            bound = difference_bound(plan, float(np.abs(x).max()), dtype)
            assert np.abs(piece.data - ref).max() <= bound


@pytest.mark.parametrize(("fs_in", "fs_out", "offset"), CASES)
def test_valid_span_is_exactly_what_the_input_supports(
    fs_in: int, fs_out: int, offset: float
) -> None:
    """The valid span needs only the given samples, and one output more on either side
    would need a sample the record does not have."""
    plan = design(fs_in, fs_out)
    start = T0 + round(offset * NS / fs_in)
    n = 5 * fs_in
    span = output_span(plan, start, n, "valid")
    assert span.n_samples > 0
    assert input_needed(plan, span.first_index, span.n_samples, start) >= (0, 0)
    assert input_needed(plan, span.first_index, span.n_samples, start)[1] <= n - 1
    assert input_needed(plan, span.first_index - 1, 1, start)[0] < 0
    assert input_needed(plan, span.first_index + span.n_samples, 1, start)[1] > n - 1
    # plan.support bounds it as a time interval.
    lo, hi = input_needed(plan, span.first_index, span.n_samples, start)
    t_first = Fraction(span.first_index, fs_out)
    t_last = Fraction(span.first_index + span.n_samples - 1, fs_out)
    t_start = Fraction(start, NS)
    assert t_start + Fraction(lo, fs_in) >= t_first - plan.support - Fraction(1, NS)
    assert t_start + Fraction(hi, fs_in) <= t_last + plan.support + Fraction(1, NS)


def test_seam_from_neighbour_samples() -> None:
    """Two consecutive files joined: each side with the neighbour's support is exact."""
    fs_in, fs_out = 1000, 100
    plan = design(fs_in, fs_out)
    n = 20 * fs_in
    x = _seismic(3, n, fs_in).astype(np.float32)
    whole = decimate(x, T0, plan, mode="valid")
    cut = 9 * fs_in + 3  # file 1 is x[:, :cut], file 2 is x[:, cut:]
    pad = plan.support_samples
    k_cut = int(np.ceil(cut * fs_out / fs_in))  # first output at or after file 2's start
    # File 1 with file 2's first `pad` samples: valid must reach every output before k_cut.
    a = decimate(x[:, : cut + pad], T0, plan, mode="valid")
    # File 2 with file 1's last `pad` samples.
    b_start = T0 + round((cut - pad) * NS / fs_in)
    b = decimate(x[:, cut - pad :], b_start, plan, mode="valid")
    ka, kb = _k(a.starttime_ns, fs_out), _k(b.starttime_ns, fs_out)
    k_cut += _k(T0, fs_out)
    assert ka + a.data.shape[1] >= k_cut
    assert kb <= k_cut
    joined = np.concatenate([a.data[:, : k_cut - ka], b.data[:, k_cut - kb :]], axis=1)
    k_whole = _k(whole.starttime_ns, fs_out)
    ref = whole.data[:, ka - k_whole : ka - k_whole + joined.shape[1]]
    # Same samples, same taps: equal but for the summation order of the BLAS kernel.
    bound = difference_bound(plan, float(np.abs(x).max()))
    np.testing.assert_allclose(joined, ref, rtol=0, atol=bound)


@pytest.mark.parametrize(("fs_in", "fs_out", "offset"), CASES)
def test_extend_covers_the_record_with_bounded_edge_error(
    fs_in: int, fs_out: int, offset: float
) -> None:
    plan = design(fs_in, fs_out)
    n = 16 * fs_in
    start = T0 + round(offset * NS / fs_in)
    x = _seismic(8, n, fs_in)
    whole = decimate(x, start, plan, mode="valid")
    a, b = 6 * fs_in, 10 * fs_in
    piece_start = start + round(a * NS / fs_in)
    piece = decimate(x[:, a:b], piece_start, plan, mode="extend")
    assert piece.data.shape[1] == (b - a) * fs_out // fs_in
    k0 = _k(piece.starttime_ns, fs_out) - _k(whole.starttime_ns, fs_out)
    ref = whole.data[:, k0 : k0 + piece.data.shape[1]]
    err = np.abs(piece.data - ref)
    edge = int(np.ceil(float(plan.support) * fs_out)) + 1
    scale = ref.std()
    # Inside: what the long record gives (same taps, same inputs), to rounding.
    assert err[:, edge:-edge].max() <= difference_bound(plan, float(np.abs(x).max()), np.float64)
    # At the edges: bounded, and small for seismic-like data with the default rule.
    edge_rms = np.sqrt(np.mean(np.concatenate([err[:, :edge], err[:, -edge:]], axis=1) ** 2))
    assert edge_rms <= 5e-3 * scale, edge_rms / scale


def test_default_extension_has_smallest_edge_error_on_seismic_data() -> None:
    """The documented reason for the default rule (even reflection) keeps holding."""
    fs_in, fs_out = 1000, 100
    plan = design(fs_in, fs_out)
    x = _seismic(32, 30 * fs_in, fs_in, seed=11)
    whole = decimate(x, T0, plan, mode="valid")
    a, b = 10 * fs_in, 20 * fs_in
    errors: dict[str, float] = {}
    rules: tuple[Extension, ...] = ("even", "odd", "edge", "zero")
    for rule in rules:
        piece = decimate(x[:, a:b], T0 + a * 1_000_000, plan, mode="extend", extension=rule)
        k0 = _k(piece.starttime_ns, fs_out) - _k(whole.starttime_ns, fs_out)
        ref = whole.data[:, k0 : k0 + piece.data.shape[1]]
        errors[rule] = float(np.sqrt(np.mean((piece.data - ref) ** 2)))
    assert min(errors, key=errors.__getitem__) == "even", errors


def test_extend_on_a_record_shorter_than_the_support() -> None:
    plan = design(1000, 100)
    x = np.full((2, 50), 7.0)
    res = decimate(x, T0, plan, mode="extend")
    assert res.data.shape == (2, 5)
    np.testing.assert_allclose(res.data, 7.0, rtol=1e-6)
    valid = decimate(x, T0, plan, mode="valid")
    assert valid.data.shape == (2, 0)


def test_empty_inputs() -> None:
    plan = design(1000, 100)
    assert decimate(np.zeros((0, 5000)), T0, plan).data.shape == (0, 500)
    assert decimate(np.zeros((3, 0)), T0, plan).data.shape == (3, 0)
