"""Data types, integer counts, pass-through and the Block wrapper."""

from __future__ import annotations

import numpy as np
import pytest

from shared_code.dsp import decimate, decimate_block, design
from shared_code.waveforms import Block, TraceMeta
from tests.numeric_bounds import U32, centred_amplitude, error_bound, gain, near_tie

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
I32 = np.iinfo(np.int32)


def _noise(shape: tuple[int, int], scale: float, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape) * scale


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.int64, np.uint16])
def test_integer_counts_are_rounded_float64_results(dtype: type) -> None:
    """Integer input: rounded to the nearest count of the float64 result (in float32 while
    the peak allows: then only rounding ties may differ, by one count), returned as int32."""
    from shared_code.dsp.engine import FLOAT32_COUNTS

    plan = design(1000, 100)
    info = np.iinfo(dtype)
    # Quiet enough that the error bounds below stay under half a count: then they prove
    # that counts differ by one at most, and only next to rounding ties.
    x = np.clip(_noise((3, 8000), 300) + (info.min + info.max) / 2, info.min, info.max)
    x = x.astype(dtype)
    res = decimate(x, T0, plan)
    assert res.data.dtype == np.int32
    ref = decimate(x.astype(np.float64), T0, plan)
    # The float path returns float32; redo it in float64 to get the unrounded values.
    exact = _float64_outputs(x.astype(np.float64), plan)
    rounded = np.rint(exact).astype(np.int64)
    # The engine filters in float32 around each trace's midrange where the counts allow,
    # else in float64; the reference is float64 too. Within the bound of each other, the
    # counts can differ only where the exact value is that close to a rounding tie, and by
    # one count at most (the bound is below one count).
    largest = float(np.abs(x.astype(np.float64)).max())
    if centred_amplitude(x) <= FLOAT32_COUNTS:
        bound = error_bound(plan, centred_amplitude(x), np.float32, to_float32=False)
    else:
        bound = error_bound(plan, largest, np.float64, to_float32=False)
    bound += error_bound(plan, largest, np.float64, to_float32=False)
    assert bound < 0.5
    diff = np.abs(res.data - rounded)
    assert diff.max() <= 1
    assert near_tie(exact, bound)[diff > 0].all()
    assert np.abs(res.data - ref.data).max() <= 0.5 + 2 * np.finfo(np.float32).eps * 4e9


def _float64_outputs(x: np.ndarray, plan: object) -> np.ndarray:
    from shared_code.dsp import engine

    chain = engine._chain(plan, T0, x.shape[1], "extend")  # type: ignore[arg-type]
    return engine._run_chain(x, chain, np.float64, "even", engine._Workspace()).copy()


def test_integer_output_is_clipped_to_int32() -> None:
    """A full-scale step overshoots (Gibbs) past the int32 range: clipped, not wrapped."""
    plan = design(1000, 100)
    x = np.full((1, 6000), I32.min, dtype=np.int32)
    x[0, 3000:] = I32.max
    res = decimate(x, T0, plan)
    assert res.data.dtype == np.int32
    exact = _float64_outputs(x.astype(np.float64), plan)
    assert exact.max() > I32.max and exact.min() < I32.min  # the clip is exercised
    np.testing.assert_array_equal(
        res.data, np.clip(np.rint(exact), I32.min, I32.max).astype(np.int32)
    )


def test_integer_counts_exact_for_constants() -> None:
    plan = design(1000, 300)
    x = np.full((2, 5000), 123_456_789, dtype=np.int32)
    res = decimate(x, T0, plan)
    assert np.all(res.data == 123_456_789)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_input_returns_float32(dtype: type) -> None:
    plan = design(1000, 100)
    x: np.ndarray = _noise((2, 5000), 1.0).astype(dtype)
    res = decimate(x, T0, plan)
    assert res.data.dtype == np.float32
    assert res.data.shape == (2, 500)
    assert res.sampling_rate_hz == 100.0
    assert not res.passthrough


def test_float32_close_to_float64() -> None:
    """float32 arithmetic stays far below the 100 dB alias floor."""
    plan = design(1000, 100)
    x = _noise((4, 20000), 1000.0)
    a = decimate(x.astype(np.float32), T0, plan).data
    b = decimate(x, T0, plan).data
    amplitude = float(np.abs(x).max())
    # The float32 input is x rounded (≤ u·|x|, carried through with gain ≤ G), then both
    # results err by at most their bounds.
    rounding = U32 * amplitude * gain(plan)
    bound = rounding + error_bound(plan, amplitude, np.float32)
    bound += error_bound(plan, amplitude, np.float64)
    assert np.abs(a - b).max() <= bound


@pytest.mark.parametrize(("fs_in", "fs_out"), [(100, 100), (50, 100), (250.0, 250.0)])
def test_passthrough_returns_input_unchanged(fs_in: float, fs_out: float) -> None:
    plan = design(fs_in, fs_out)
    x = np.arange(12, dtype=np.int32).reshape(2, 6)
    res = decimate(x, T0 + 123, plan)
    assert res.passthrough
    assert res.data is x
    assert res.starttime_ns == T0 + 123
    assert res.sampling_rate_hz == fs_in
    block = Block(x, fs_in, T0, [TraceMeta(0), TraceMeta(1)])
    assert decimate_block(block, fs_out) is block


def test_decimate_block_keeps_metadata() -> None:
    traces = [TraceMeta(i, network="XX", station=f"S{i:03d}", headers={"k": i}) for i in range(3)]
    block = Block(_noise((3, 4000), 10).astype(np.float32), 1000.0, T0 + 5_000_000, traces)
    out = decimate_block(block, 100.0)
    assert out.traces is traces
    assert out.sampling_rate == 100.0
    assert out.data.shape == (3, 400)
    assert out.starttime_ns == T0 + 10_000_000  # first 100 Hz grid point at or after start
    valid = decimate_block(block, 100.0, mode="valid")
    assert valid.data.shape[1] < 400


def test_bad_arguments() -> None:
    plan = design(1000, 100)
    with pytest.raises(ValueError, match="2-D"):
        decimate(np.zeros(100), T0, plan)
    with pytest.raises(ValueError, match="mode"):
        decimate(np.zeros((1, 100)), T0, plan, mode="same")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="extension"):
        decimate(np.zeros((1, 100)), T0, plan, extension="wrap")  # type: ignore[arg-type]


def test_non_contiguous_input() -> None:
    plan = design(1000, 100)
    x = _noise((8, 6000), 1.0)
    a = decimate(x[::2, 100:], T0, plan).data
    b = decimate(np.ascontiguousarray(x[::2, 100:]), T0, plan).data
    np.testing.assert_array_equal(a, b)
    f = decimate(np.asfortranarray(x), T0, plan).data
    np.testing.assert_array_equal(f, decimate(x, T0, plan).data)


@pytest.mark.parametrize("peak", [3000, 1 << 16, 1 << 18])
def test_small_counts_in_float32_agree_with_float64_but_for_ties(peak: int) -> None:
    from shared_code.dsp.engine import FLOAT32_COUNTS

    assert peak <= FLOAT32_COUNTS
    rng = np.random.default_rng(5)
    x = np.clip(np.round(rng.standard_normal((20, 20000)) * peak / 4), -peak, peak)
    x[:, ::5000] = peak  # full-scale spikes
    counts = x.astype(np.int32)
    plan = design(1000.0, 100.0)
    ours = decimate(counts, 0, plan, "valid").data.astype(np.int64)
    # One trace beyond FLOAT32_COUNTS sends the whole call down the float64 path.
    loud = np.full((1, counts.shape[1]), FLOAT32_COUNTS * 4, dtype=np.int32)
    reference = decimate(np.vstack([counts, loud]), 0, plan, "valid").data[:-1].astype(np.int64)
    diff = np.abs(ours - reference)
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.005  # only at rounding ties


@pytest.mark.parametrize(("fs_in", "fs_out"), [(1000.0, 100.0), (1000.0, 300.0), (500.0, 200.0)])
def test_counts_on_a_large_dc_offset_keep_float64_counts(fs_in: float, fs_out: float) -> None:
    """Digitizers deliver counts around a DC offset: filtered around each trace's midrange,
    the offset costs no precision, also where rational ratios give each phase its own DC gain."""
    from shared_code.dsp.engine import FLOAT32_COUNTS

    rng = np.random.default_rng(7)
    counts = (rng.standard_normal((12, 30000)) * 4000 + 1_500_000).astype(np.int32)
    counts[:6] -= 3_000_000  # negative offsets too
    plan = design(fs_in, fs_out)
    ours = decimate(counts, 0, plan, "valid").data.astype(np.int64)
    loud = np.zeros((1, counts.shape[1]), dtype=np.int32)
    loud[0, ::2] = 4 * FLOAT32_COUNTS  # forces the float64 path for the reference
    reference = decimate(np.vstack([counts, loud]), 0, plan, "valid").data[:-1].astype(np.int64)
    diff = np.abs(ours - reference)
    assert diff.max() <= 1
    assert (diff > 0).mean() < 0.005
