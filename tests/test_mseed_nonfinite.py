"""Non-finite samples (NaN, ±Inf) never reach MiniSEED: each finite run of a trace is its own
segment, the stretches between are gaps, counted and logged. Writer-level checks against
ObsPy's reader and against writes of the finite runs alone; then a real float input with NaN
and ±Inf stretches through the real decimate and convert stages, its gaps where the
decimation filter's support puts them."""

from __future__ import annotations

import io
import logging
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
import pytest

from shared_code import formats
from shared_code.dsp import decimate, design
from shared_code.fields import parse_fields
from shared_code.formats import mseed
from shared_code.formats.streaming import layout_of
from shared_code.messages import SourceBlob
from shared_code.stages import convert_file, decimate_file
from shared_code.waveforms import NS_PER_S, Block, Recording, TraceMeta
from tests import formats_helpers as fh

RATE = 250.0
NAN, INF = np.float32(np.nan), np.float32(np.inf)


def _metas(n: int) -> list[TraceMeta]:
    return [TraceMeta(i, "XX", f"S{i}", "00", "HHZ") for i in range(n)]


def _write(recording: Recording, keep_nonfinite: bool = False) -> tuple[bytes, mseed.MseedWriter]:
    out = io.BytesIO()
    writer = mseed.MseedWriter(layout_of(recording), out, keep_nonfinite=keep_nonfinite)
    with writer:
        for i, block in enumerate(recording.blocks):
            writer.write_rows(i, 0, block.data)
    return out.getvalue(), writer


def _read(data: bytes) -> obspy.Stream:
    return obspy.read(io.BytesIO(data), format="MSEED")


def _time(index: int) -> int:
    """Time (ns) of sample ``index`` of a block starting at START_NS, µs-rounded as written."""
    return (fh.START_NS + round(Fraction(index) / Fraction(RATE) * NS_PER_S) + 500) // 1000 * 1000


def _records(data: bytes) -> list[bytes]:
    return [data[i : i + 512] for i in range(0, len(data), 512)]


def test_finite_runs_are_segments_bit_identical_to_writes_without_the_bad_samples() -> None:
    rng = np.random.default_rng(3)
    data = rng.standard_normal((5, 3000)).astype(np.float32)
    data[0, :7] = NAN  # leading
    data[1, 2990:] = -INF  # trailing
    data[2, 1000:1100] = NAN  # two stretches inside, one of them Inf
    data[2, 2000] = INF
    data[3] = NAN  # all-NaN row: no record at all
    clean = data[4].copy()
    written, writer = _write(Recording("MSEED", [Block(data, RATE, fh.START_NS, _metas(5))], "x"))

    runs = {0: [(7, 3000)], 1: [(0, 2990)], 2: [(0, 1000), (1100, 2000), (2001, 3000)]}
    runs[4] = [(0, 3000)]
    stream = _read(written)
    assert not any(np.isnan(tr.data).any() or np.isinf(tr.data).any() for tr in stream)
    got = [(tr.stats.station, tr.stats.starttime.ns, tr.stats.npts) for tr in stream]
    expected = [(f"S{r}", _time(a), b - a) for r, spans in runs.items() for a, b in spans]
    assert got == expected
    assert writer.nonfinite_samples == 7 + 10 + 100 + 1 + 3000
    assert writer.gaps == 1 + 1 + 2 + 1

    # The same bytes as writing every finite run alone (its own start time), except for the
    # sequence numbers, which run on through a trace's segments: 1, 2, ... per trace.
    pieces = [
        Block(data[r : r + 1, a:b], RATE, _time(a), [_metas(5)[r]])
        for r, spans in runs.items()
        for a, b in spans
    ]
    alone = b"".join(_write(Recording("MSEED", [p], "x"))[0] for p in pieces)
    mine, theirs = _records(written), _records(alone)
    assert len(mine) == len(theirs)
    assert [m[6:] for m in mine] == [t[6:] for t in theirs]
    per_station: dict[bytes, list[int]] = {}
    for rec in mine:
        per_station.setdefault(rec[8:13], []).append(int(rec[:6]))
    assert all(seq == list(range(1, len(seq) + 1)) for seq in per_station.values())
    np.testing.assert_array_equal(stream.select(station="S4")[0].data, clean)


def test_integers_are_untouched_and_intermediate_files_keep_nan() -> None:
    ints = np.arange(-5000, 5000, dtype=np.int32).reshape(2, -1) * 1000
    floats = np.linspace(-1, 1, 2000, dtype=np.float32).reshape(2, -1)
    floats[0, 10:20] = NAN
    blocks = [
        Block(ints, RATE, fh.START_NS, _metas(2)),
        Block(floats, RATE, fh.START_NS, _metas(2)),
    ]
    recording = Recording("MSEED", blocks, "x")
    written, writer = _write(recording)
    int_traces = [tr for tr in _read(written) if tr.data.dtype.kind == "i"]
    np.testing.assert_array_equal(np.stack([tr.data for tr in int_traces]), ints)
    assert writer.nonfinite_samples == 10

    kept, writer = _write(recording, keep_nonfinite=True)
    assert writer.nonfinite_samples == writer.gaps == 0
    float_traces = [tr for tr in _read(kept) if tr.data.dtype.kind == "f"]
    assert [tr.stats.npts for tr in float_traces] == [1000, 1000]
    np.testing.assert_array_equal(float_traces[0].data, floats[0])  # NaN where NaN was


def test_the_whole_recording_writer_makes_gaps_too() -> None:
    """``formats.write(..., "MSEED")``: the path the seam sweep's halves take."""
    data = np.ones((1, 500), np.float32)
    data[0, 100:200] = NAN
    out = io.BytesIO()
    formats.write(
        Recording("MSEED", [Block(data, RATE, fh.START_NS, _metas(1))], "x"), out, "MSEED"
    )
    stream = _read(out.getvalue())
    assert [tr.stats.npts for tr in stream] == [100, 300]


def test_the_log_names_each_stretch_then_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    data = np.ones((1, 1000), np.float32)
    data[0, 10:1000:20] = NAN  # 50 one-sample stretches
    recording = Recording("MSEED", [Block(data, RATE, fh.START_NS, _metas(1))], "mseed/f/x.mseed")
    with caplog.at_level(logging.WARNING, logger="shared_code.formats.mseed"):
        _write(recording)
    [record] = caplog.records
    text = record.getMessage()
    assert text.startswith("mseed/f/x.mseed: 50 non-finite samples (NaN/Inf) in 50 stretches")
    assert text.count("XX.S0.00.HHZ ") == mseed.MAX_LOGGED_GAPS
    assert f"and {50 - mseed.MAX_LOGGED_GAPS} more" in text
    first = obspy.UTCDateTime(ns=_time(10))
    assert (
        f"XX.S0.00.HHZ {first.isoformat()}Z - {obspy.UTCDateTime(ns=_time(11)).isoformat()}Z"
        in text
    )


# --- a real float input through the real stages ------------------------------------------------

FIELDS = parse_fields(
    """
[fields.test]
network = "XT"
target_rate_hz = 50.0
location = "00"
station_source = "header"
station_prefix = "T"
station_first = 1
stations = ["BGLD"]
components = ["Z", "N", "E"]
sensors = { Z = "short-period", N = "short-period", E = "short-period" }
"""
)
#: Bad input stretches [start, stop) in samples of the 200 Hz input: NaN, +Inf, -Inf; far
#: enough apart (10 s) that the filter cannot join their gaps.
BAD = [(20000, 20100, np.nan), (22000, 22010, np.inf), (24000, 24001, -np.inf)]


def _real_float_trace() -> obspy.Trace:
    """BW.BGLD..EHE from ObsPy's test data (50668 samples at 200 Hz) as float32 counts."""
    path = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data" / "gaps.mseed"
    tr = obspy.read(str(path))[-1]
    tr.data = tr.data.astype(np.float32)
    for a, b, value in BAD:
        tr.data[a:b] = value
    return tr


def test_nan_and_inf_stretches_become_gaps_where_the_filter_support_puts_them(
    tmp_path: Path, share: Path
) -> None:
    tr = _real_float_trace()
    raw = tmp_path / "in.mseed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ObsPy: the stored encoding does not match float32
        tr.write(str(raw), format="MSEED", encoding="FLOAT32", reclen=4096)
    cfg = FIELDS.get("test")
    source = SourceBlob(
        url=raw.as_uri(), container="raw", name="test/in.mseed", etag='"1"', event_id="e",
        event_time="2024-01-01T00:00:00+00:00",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy: NaN in the FIR's matmul
        request, decimated = decimate_file(raw, "test/in.mseed", share, cfg, source)
    # The decimated file (read back by convert) still holds the non-finite outputs: one
    # trace. An Inf input comes out NaN (the taps have both signs: Inf - Inf).
    [inter] = obspy.read(str(share / decimated.output_path))
    assert not np.isfinite(inter.data).all()
    report = convert_file(request, share, cfg)
    stream = obspy.read(str(share / report.output_path))
    assert all(np.isfinite(t.data).all() for t in stream)

    # Predicted from the filter: every output whose support (±plan.support) reaches a bad
    # input sample is missing; the engine's block-wise FIR (a row of S input samples per
    # matrix product: 0 × NaN is NaN) may widen that by less than S input samples per stage,
    # below one composite support (see the mseed module docstring).
    plan = design(tr.stats.sampling_rate, 50.0)
    support = plan.support_ns
    out_start, out_n = inter.stats.starttime.ns, inter.stats.npts
    t_out = out_start + np.arange(out_n) * NS_PER_S // 50
    t_in = tr.stats.starttime.ns + np.array([(a, b - 1) for a, b, _ in BAD]) * NS_PER_S // 200
    missing = np.ones(out_n, bool)
    for seg in stream:
        first = (seg.stats.starttime.ns - out_start) * 50 // NS_PER_S
        missing[first : first + seg.stats.npts] = False
    assert report.nonfinite_samples == missing.sum() == report.samples_in - report.samples_out
    assert report.gaps == len(BAD) == len(stream) - 1
    allowed = np.zeros(out_n, bool)
    for lo, hi in t_in:
        assert missing[(t_out >= lo - support) & (t_out <= hi + support)].all()
        allowed |= (t_out >= lo - 2 * support) & (t_out <= hi + 2 * support)
    assert not (missing & ~allowed).any()
    # The samples around the gaps are those of the decimated file, bit for bit.
    for seg in stream:
        first = (seg.stats.starttime.ns - out_start) * 50 // NS_PER_S
        np.testing.assert_array_equal(seg.data, inter.data[first : first + seg.stats.npts])


def test_engine_output_is_finite_beyond_the_support_of_a_nan() -> None:
    """The DSP engine itself: no error on NaN/Inf input; non-finite outputs only near them."""
    plan = design(1000.0, 100.0)
    x = np.random.default_rng(0).standard_normal((2, 20000)).astype(np.float32)
    x[0, 10000] = NAN
    x[1, 5000:5003] = -INF
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = decimate(x, fh.START_NS, plan, "valid")
    t_out = res.starttime_ns + np.arange(res.data.shape[1]) * NS_PER_S // 100
    for row, (lo, hi) in zip(res.data, [(10000, 10000), (5000, 5002)], strict=True):
        t_lo, t_hi = (fh.START_NS + i * NS_PER_S // 1000 for i in (lo, hi))
        bad = ~np.isfinite(row)
        assert bad[(t_out >= t_lo - plan.support_ns) & (t_out <= t_hi + plan.support_ns)].all()
        assert not bad[
            (t_out < t_lo - 2 * plan.support_ns) | (t_out > t_hi + 2 * plan.support_ns)
        ].any()


def test_a_sac_decimated_file_keeps_nan(tmp_path: Path) -> None:
    """SAC input stays SAC after decimation; its trial write-and-read must take NaN for NaN
    (the decimated file is convert's input: the gaps are made there)."""
    src = tmp_path / "in.sac"
    tr = obspy.Trace(np.linspace(-1, 1, 500, dtype=np.float32))
    tr.data[100:120] = np.nan
    tr.stats.update({"network": "XX", "station": "A", "channel": "HHZ", "sampling_rate": 100.0})
    tr.write(str(src), format="SAC")
    recording = formats.read(src)
    layout = layout_of(recording)
    assert formats.output_format_for(layout) == "SAC"
    out = io.BytesIO()
    with formats.open_writer("SAC", out, layout, intermediate=True) as writer:
        writer.write_rows(0, 0, recording.blocks[0].data)
    back = tmp_path / "out.sac"
    back.write_bytes(out.getvalue())
    np.testing.assert_array_equal(formats.read(back).blocks[0].data[0], tr.data)
