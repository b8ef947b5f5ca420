"""The decimator takes samples as a file stores them: any byte order, strided rows, and
reuses its scratch memory between calls without leaking one call's samples into the next."""

from __future__ import annotations

import numpy as np
import pytest

from shared_code.dsp import design, engine
from shared_code.dsp.engine import decimate
from tests.numeric_bounds import centred_amplitude, error_bound, near_tie

T0 = 1_795_435_200_000_000_000
PLAN = design(1000.0, 100.0)


def _counts(
    n_traces: int, n_samples: int, offset: int, seed: int = 0, step: int = 200
) -> np.ndarray:
    """A random walk of steps up to ``step`` counts, centred on ``offset``."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.integers(-step, step, (n_traces, n_samples)), axis=1)
    return (walk - walk.mean(axis=1, keepdims=True) + offset).astype(np.int64)


def _as_records(data: np.ndarray, dtype: str, header_bytes: int = 240) -> np.ndarray:
    """``data`` as a file holds it: each trace after a header, in ``dtype``'s byte order."""
    stored = data.astype(dtype)
    records = np.zeros((len(data), header_bytes + stored[0].nbytes), np.uint8)
    records[:, header_bytes:] = stored.view(np.uint8).reshape(len(data), -1)
    view = records[:, header_bytes:].view(dtype)
    assert not view.flags.c_contiguous  # strided, as the reader hands it over
    return view


@pytest.mark.parametrize("mode", ["valid", "extend"])
@pytest.mark.parametrize(
    ("dtype", "offset"),
    [(">i4", 1_000_000), (">i4", 40_000_000), (">i2", 0), (">f4", 3_000), ("<f4", 3_000)],
)
def test_stored_samples_decimate_as_native_ones(dtype: str, offset: int, mode: str) -> None:
    """Big-endian, strided input gives the native input's result bit for bit, in the same
    output type (float32 stays on the float32 path, counts above 2^24 take the integer
    centring)."""
    native = _counts(11, 3000, offset).astype(np.dtype(dtype).newbyteorder("="))
    stored = _as_records(native, dtype)
    want = decimate(native, T0, PLAN, mode)  # type: ignore[arg-type]
    got = decimate(stored, T0, PLAN, mode)  # type: ignore[arg-type]
    assert got.data.dtype == want.data.dtype == (np.int32 if "i" in dtype else np.float32)
    np.testing.assert_array_equal(got.data, want.data)
    assert got.starttime_ns == want.starttime_ns


@pytest.mark.parametrize("offset", [0, 1 << 23, (1 << 24) + 12_345, -(1 << 30)])
def test_centred_counts_match_float64_filtering(offset: int) -> None:
    """Either centring (float32 after an exact cast below 2^24, integers above) stays within
    one count of filtering in float64, and off by one only at rare rounding ties."""
    # Quiet enough that the bounds below stay under half a count (see numeric_bounds).
    x = _counts(6, 4000, offset, step=20).astype(np.int32)
    got = decimate(x, T0, PLAN, "valid").data.astype(np.int64)
    chain = engine._chain(PLAN, T0, x.shape[1], "valid")
    ref = engine._run_chain(x.astype(np.float64), chain, np.float64, "zero", engine._Workspace())
    diff = np.abs(got - np.rint(ref))
    # float32 around the midrange (or integers) against float64: counts differ only where
    # the exact value lies within the two results' error bounds of a rounding tie.
    largest = float(np.abs(x.astype(np.float64)).max())
    bound = error_bound(PLAN, centred_amplitude(x), np.float32, to_float32=False)
    bound += error_bound(PLAN, largest, np.float64, to_float32=False)
    assert bound < 0.5
    assert diff.max() <= 1
    assert near_tie(ref, bound)[diff > 0].all()


def test_out_receives_the_result_in_a_strided_view() -> None:
    x = _counts(5, 3000, 500).astype(np.int32)
    want = decimate(x, T0, PLAN, "valid").data
    n = want.shape[1]
    frame = np.full((5, n + 7), -1, np.int32)
    res = decimate(x, T0, PLAN, "valid", out=frame[:, 3 : 3 + n])
    np.testing.assert_array_equal(frame[:, 3 : 3 + n], want)
    assert (frame[:, :3] == -1).all() and (frame[:, 3 + n :] == -1).all()
    assert np.shares_memory(res.data, frame)
    with pytest.raises(ValueError, match="out must be"):
        decimate(x, T0, PLAN, "valid", out=np.empty((5, n + 1), np.int32))
    with pytest.raises(ValueError, match="out must be"):
        decimate(x, T0, PLAN, "valid", out=np.empty((5, n), np.float32))


def test_scratch_memory_carries_nothing_between_calls() -> None:
    """Calls of other shapes and types in between leave a result unchanged (the workspace is
    reused, never read before it is written)."""
    a = _counts(9, 5000, 100, seed=1).astype(np.int32)
    first = decimate(a, T0, PLAN, "valid").data.copy()
    decimate(_counts(40, 9000, -7, seed=2).astype(np.float32), T0, PLAN, "extend")
    decimate(_counts(3, 700, 1 << 26, seed=3).astype(np.int32), T0 + 123_456, PLAN, "extend")
    np.testing.assert_array_equal(decimate(a, T0, PLAN, "valid").data, first)
