"""Seams of files that start off their input-sample grid (a start a fraction of a sample
period after the epoch's grid, as real recorders stamp them: ObsPy's YAYT file starts 0.1 ms
after the second at 100 Hz).

The boundary key is the boundary's time rounded to the input grid, and a seam half is split
there, so a file starts up to half an input period after (or before) its key. The grid
points of a lonely half can then lie between the key and the file's first (last) sample,
where the one edge alone has no sample: the missing neighbour's edge is made up by the
engine's extension rule and the half computed as from two edges. These tests prove both
halves at many offsets, a lone file swept, two consecutive off-grid files joined, and ObsPy's
real off-grid files through decimate, convert and the sweep.

Input rates here have whole-ns sample periods, so every time in the bookkeeping is exact and
the only differences are float rounding (the bounds of tests/numeric_bounds.py).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
import pytest
from obspy import Stream, Trace, UTCDateTime

from scripts.sample_data import START, array_record
from shared_code.cli import main
from shared_code.dsp import decimate, design, extended, output_span
from shared_code.fields import parse_fields
from shared_code.seams import (
    LEFT,
    RIGHT,
    Edge,
    boundary_index,
    boundary_key,
    edge_length,
    seam_piece,
)
from tests.numeric_bounds import difference_bound
from tests.test_real_world_inputs import _assert_converts, _fields_toml, _read_any

T0_NS = int(START.timestamp()) * 1_000_000_000
#: Offsets from the input grid, in input periods: both sides of the half-period where the
#: key's rounding flips, near 0 and near 1, and on the grid as the control.
FRACTIONS = [0.0, 0.01, 0.1, 0.3, 0.49, 0.51, 0.7, 0.97]
#: (input Hz, output Hz, input periods from the second to the boundary's grid point): integer
#: ratios and a rational one, whose outputs lie between input samples: 6 periods puts the
#: output grid point at 6.67 periods between an off-grid end and the next key (7) for
#: fractions above 0.5, in the left half where the tail alone has no sample.
PLANS = [(100.0, 20.0, 0), (125.0, 20.0, 0), (1000.0, 100.0, 0), (1000.0, 300.0, 0),
         (1000.0, 300.0, 6)]  # fmt: skip


def _ns(samples: int, rate_hz: float) -> int:
    return round(Fraction(samples) / Fraction(rate_hz) * 1_000_000_000)


def _points_between(a: Fraction, b: Fraction, rate: Fraction) -> int:
    """Output grid points k / rate in [a, b) (a, b in s), negated for those in [b, a)."""
    return math.ceil(b * rate) - math.ceil(a * rate)


@pytest.mark.parametrize("frac", FRACTIONS)
@pytest.mark.parametrize(("rate_in", "rate_out", "whole"), PLANS)
def test_a_lonely_half_at_an_off_grid_boundary(
    rate_in: float, rate_out: float, whole: int, frac: float
) -> None:
    plan = design(rate_in, rate_out)
    size = edge_length(plan)
    x = np.random.default_rng(7).standard_normal((3, size)).astype(np.float32)
    bound = difference_bound(plan, float(np.abs(x).max()))
    t_b = T0_NS + round((whole + frac) / rate_in * 1e9)  # B's first sample, A's end
    key = boundary_key(t_b, plan.input_rate)
    k_t = boundary_index(key, plan)
    t_key = Fraction(key) / plan.input_rate
    exact_t_b = Fraction(t_b, 10**9)

    # Right half from B's head alone: from the key's grid point up to B's valid interior.
    head = Edge(x, t_b, "b")
    right = seam_piece(plan, key, tail=None, head=head, halves=(RIGHT,))
    assert right.first_index == k_t
    assert k_t + right.n_samples == output_span(plan, t_b, size, "valid").first_index
    ext = decimate(x, t_b, plan, "extend")
    first_ext = output_span(plan, t_b, size, "extend").first_index
    # The one edge's own extend mode has the grid points from its first sample on: the half
    # also has those between the key and that sample (t_b > key), or lacks those between the
    # sample and the key, which are the left half's (t_b < key). None when on the grid.
    skip = first_ext - k_t
    assert skip == _points_between(t_key, exact_t_b, plan.output_rate)
    assert skip in (-1, 0, 1) and (skip <= 0 or exact_t_b > t_key)
    # ... and where both have a grid point, the same values: the made-up edge is the engine's
    # own extension (even reflection about the edge sample).
    n = right.n_samples - max(skip, 0)
    at = max(-skip, 0)
    np.testing.assert_allclose(
        right.data[:, max(skip, 0) :], ext.data[:, at : at + n], rtol=0, atol=bound
    )

    # Left half from A's tail alone: from A's valid interior up to the key's grid point.
    tail = Edge(x, t_b - _ns(size, rate_in), "a")
    left = seam_piece(plan, key, tail=tail, head=None, halves=(LEFT,))
    valid = output_span(plan, tail.starttime_ns, size, "valid")
    assert left.first_index == valid.first_index + valid.n_samples
    assert left.first_index + left.n_samples == k_t
    ext = decimate(x, tail.starttime_ns, plan, "extend")
    span = output_span(plan, tail.starttime_ns, size, "extend")
    stop_ext = span.first_index + span.n_samples
    extra = k_t - stop_ext  # points the half has past the tail's end (-: the tail has more)
    assert extra == _points_between(exact_t_b, t_key, plan.output_rate)
    assert extra in (-1, 0, 1) and (extra <= 0 or exact_t_b < t_key)
    n_ext = left.n_samples - max(extra, 0)  # left-half points the tail's extend mode has
    at = left.first_index - span.first_index
    np.testing.assert_allclose(
        left.data[:, :n_ext], ext.data[:, at : at + n_ext], rtol=0, atol=bound
    )


def test_the_made_up_edge_is_the_engines_extension() -> None:
    """extended() gives exactly the samples decimate's extend mode filters past an edge."""
    x = np.arange(12, dtype=np.int32).reshape(2, 6)
    got = extended(x, 3, 2)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got[0], [3, 2, 1, 0, 1, 2, 3, 4, 5, 4, 3])
    np.testing.assert_array_equal(extended(x, 0, 0), x)
    # Past one full reflection of a short record the farthest sample is held (engine rule).
    np.testing.assert_array_equal(extended(x[:, :2], 3, 0)[0], [1, 1, 1, 0, 1])
    with pytest.raises(ValueError):
        extended(x, -1, 0)


# --------------------------------------------------------------------------------------------
# Through the pipeline: MiniSEED files off the grid, processed and swept by the CLI

RATE, TARGET = 100.0, 20.0
PLAN = design(RATE, TARGET)
N_SAMPLES, SPLIT = 6000, 3500  # 60 s, cut after 35 s
COMPONENTS = "ZNE"
FIELD_TOML = f"""
[fields.off]
network = "XO"
target_rate_hz = {TARGET}
location = "00"
station_source = "header"
stations = ["OFFG"]
station_prefix = ""
station_count = 1
components = ["Z", "N", "E"]
sensors = {{ Z = "short-period", N = "short-period", E = "short-period" }}
"""


@pytest.fixture(scope="module")
def record() -> np.ndarray:
    return array_record(n_stations=1, seconds=N_SAMPLES / RATE, rate_hz=RATE, seed=5)[:3].astype(
        np.float32
    )


def _write(path: Path, data: np.ndarray, start_ns: int) -> Path:
    st = Stream()
    for i, c in enumerate(COMPONENTS):
        st.append(Trace(data[i], header={
            "network": "XO", "station": "OFFG", "location": "00", "channel": f"HH{c}",
            "sampling_rate": RATE, "starttime": UTCDateTime(ns=start_ns),
        }))  # fmt: skip
    st.write(str(path), format="MSEED", encoding="FLOAT32", reclen=512)
    return path


def _process(tmp: Path, files: list[Path]) -> list[obspy.Trace]:
    """CLI process + sweep-seams --now; the MiniSEED merged, one trace per component."""
    fields = tmp / "fields.toml"
    fields.write_text(FIELD_TOML)
    share = tmp / "share"
    common = ["--fields", str(fields), "--output", str(share)]
    assert main(["process", "--field", "off", *common, *map(str, files)]) == 0
    assert main(["sweep-seams", "--now", *common]) == 0
    st = Stream()
    for path in sorted((share / "mseed").rglob("*.mseed")):
        st += obspy.read(str(path))
    st.sort()
    assert st.get_gaps() == [], st.get_gaps()[:3]
    st.merge(method=-1)
    assert len(st) == len(COMPONENTS)
    return [st.select(component=c)[0] for c in COMPONENTS]


def _check(traces: list[obspy.Trace], record: np.ndarray, start_ns: int) -> None:
    """On the output grid from the start's key to the end's key, and equal to decimating the
    whole record where that is exact (its valid outputs)."""
    end_ns = start_ns + _ns(record.shape[1], RATE)
    first = boundary_index(boundary_key(start_ns, PLAN.input_rate), PLAN)
    stop = boundary_index(boundary_key(end_ns, PLAN.input_rate), PLAN)
    whole = decimate(record, start_ns, PLAN, "valid")
    valid = output_span(PLAN, start_ns, record.shape[1], "valid")
    ext = decimate(record, start_ns, PLAN, "extend")
    ext_span = output_span(PLAN, start_ns, record.shape[1], "extend")
    for i, tr in enumerate(traces):
        assert tr.stats.sampling_rate == TARGET
        assert round(tr.stats.starttime.ns * TARGET / 1e9) == first
        assert tr.stats.npts == stop - first
        bound = difference_bound(PLAN, float(np.abs(record[i]).max()))
        inside = tr.data[valid.first_index - first : valid.first_index - first + valid.n_samples]
        np.testing.assert_allclose(inside, whole.data[i], rtol=0, atol=bound)
        # The record's two real ends: its lonely halves extend the edges as extend mode does.
        lo = max(first, ext_span.first_index)
        hi = min(stop, ext_span.first_index + ext_span.n_samples)
        np.testing.assert_allclose(
            tr.data[lo - first : hi - first],
            ext.data[i, lo - ext_span.first_index : hi - ext_span.first_index],
            rtol=0, atol=bound,
        )  # fmt: skip


#: Offsets of the record's start from the second, ms (input period 10 ms): the brief's 0.1 ms
#: and 3 ms, and two past the half period, whose keys round up to the next sample.
OFFSETS_MS = [0.1, 3.0, 7.0, 9.9]


@pytest.mark.parametrize("offset_ms", OFFSETS_MS)
def test_a_lone_off_grid_file_is_swept_whole(record, tmp_path: Path, offset_ms: float) -> None:
    start = T0_NS + round(offset_ms * 1e6)
    traces = _process(tmp_path, [_write(tmp_path / "alone.mseed", record, start)])
    _check(traces, record, start)


@pytest.mark.parametrize("newest_first", [False, True])
@pytest.mark.parametrize("offset_ms", OFFSETS_MS)
def test_two_off_grid_files_join_as_the_whole_record(
    record, tmp_path: Path, offset_ms: float, newest_first: bool
) -> None:
    start = T0_NS + round(offset_ms * 1e6)
    files = [
        _write(tmp_path / "a.mseed", record[:, :SPLIT], start),
        _write(tmp_path / "b.mseed", record[:, SPLIT:], start + _ns(SPLIT, RATE)),
    ]
    traces = _process(tmp_path, files[::-1] if newest_first else files)
    _check(traces, record, start)


# --------------------------------------------------------------------------------------------
# ObsPy's real off-grid files: decimate, convert, sweep

OBSPY_IO = Path(obspy.__file__).parent / "io"
#: (file, target Hz): each starts off its grid (YAYT 0.1 ms after the second at 100 Hz,
#: 1T_MONN 3.6 ms at 125 Hz, the ALSEP PSE file 0.56 s at 6.625 Hz, whose sample period is
#: no whole number of ns) and each crashed the sweep before the fix at these targets.
REAL = [
    ("y/tests/data/YAYT_BHZ_20021223.124800", 20.0),
    ("y/tests/data/YAYT_BHZ_20021223.124800", 8.0),
    ("mseed/tests/data/1T_MONN_00_EDH.mseed", 20.0),
    ("mseed/tests/data/1T_MONN_00_EDH.mseed", 50.0),
    ("alsep/tests/data/pse.a12.10.91.mini", 5.0),
    ("alsep/tests/data/pse.a12.10.91.mini", 0.75),
]


@pytest.mark.parametrize(("name", "target_hz"), REAL, ids=lambda v: str(v).rsplit("/", 1)[-1])
def test_real_off_grid_files_decimate_convert_and_sweep(
    name: str, target_hz: float, tmp_path: Path
) -> None:
    path = OBSPY_IO / name
    # Ids from the trace positions: the seams do not depend on how SEED ids are made.
    cfg = parse_fields(_fields_toml(target_hz, _read_any(path))).get("idx")
    _assert_converts(path, f"idx/{path.parent.name}/{path.name}", tmp_path, cfg)
    assert list((tmp_path / "mseed").rglob("_seams/*/*.mseed")), "no lonely half swept"
    out = Stream()
    for mseed in sorted((tmp_path / "mseed").rglob("*.mseed")):
        out += obspy.read(str(mseed))
    out.sort()
    assert out.get_gaps() == [], out.get_gaps()[:3]
