"""Input rates the decimator cannot resample exactly: snapped within a timing bound, or refused.

A rate such as GSE1's drift-corrected 124.9999924 Hz has no ratio to a 20 Hz target with a
small denominator (×1315790/8223687). The block is decimated as if sampled at the nearest
rate that has one (125 Hz), when that moves its last sample by at most
``SNAP_DRIFT_FRACTION`` of an output period; otherwise the file is refused, naming the blob,
both rates and the drift. Real files from ObsPy's test data and synthetic MiniSEED, through
``decimate_file`` and ``convert_file`` on a real share directory.
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
import pytest

from scripts.survey_obspy_testdata import fields_toml as _fields_toml
from shared_code.decimation_job import SNAP_DRIFT_FRACTION, snap_rate
from shared_code.dsp import design
from shared_code.fields import FieldConfig, parse_fields
from shared_code.messages import SourceBlob
from shared_code.share_layout import ensure_layout
from shared_code.stages import PERMANENT_ERRORS, convert_file, decimate_file
from shared_code.waveforms import exact_rate
from tests.numeric_bounds import error_bound
from tests.test_real_world_inputs import OBSPY, _run

NS = 1_000_000_000
GSE1 = OBSPY / "io/gse2/tests/data/loc_STAU20031119011659.z"  # 124.9999924 Hz, 3000 samples
SEISAN = OBSPY / "io/seisan/tests/data/9701-30-1048-54S.MVO_21_1"  # 75.19 Hz, 3675 samples
ALSEP = OBSPY / "io/alsep/tests/data/wth.1.5.mini"  # 39.26 Hz


def test_snap_moves_to_the_nearest_resamplable_rate() -> None:
    snap = snap_rate(124.9999924, 20.0, 3000)
    assert snap is not None
    assert snap.snapped_rate == 125
    assert snap.drift_s == 3000 * abs(Fraction(1, 125) - 1 / exact_rate(124.9999924))
    assert snap.allowed_s == Fraction(1, 100) / 20  # 1 % of a 50 ms output period
    assert snap.acceptable
    # 75.19 → 20 Hz is ×2000/7519: beyond the factor allowed, snapped to ×79/297.
    snap = snap_rate(75.19, 20.0, 3675)
    assert snap is not None and snap.snapped_rate == 20 * Fraction(297, 79)
    assert snap.acceptable
    # Rates that need no snapping: exact rational (39.26 → 20 Hz is ×1000/1963), integer,
    # at or below the target.
    assert snap_rate(39.26, 20.0, 10**9) is None
    assert snap_rate(1000.0, 20.0, 10**9) is None
    assert snap_rate(19.9999997, 20.0, 10**9) is None


def test_snap_is_refused_beyond_the_drift_bound() -> None:
    """The drift grows with the block: a long enough block of 124.9999924 Hz is refused."""
    per_sample = abs(Fraction(1, 125) - 1 / exact_rate(124.9999924))
    limit = math.floor(SNAP_DRIFT_FRACTION / 20 / per_sample)  # ~1.03 M samples
    snap = snap_rate(124.9999924, 20.0, limit)
    assert snap is not None and snap.acceptable
    snap = snap_rate(124.9999924, 20.0, limit + 1)
    assert snap is not None and not snap.acceptable
    # Snapped to the target itself: the block passes through unchanged, nothing drifts.
    snap = snap_rate(20.00001, 20.0, 10**9)
    assert snap is not None and snap.snapped_rate == 20 and snap.acceptable


def _field(target_hz: float = 20.0) -> FieldConfig:
    return parse_fields(_fields_toml(target_hz)).get("idx")


@pytest.mark.parametrize(
    ("path", "snapped"),
    [(GSE1, "125.0"), (SEISAN, repr(float(20 * Fraction(297, 79)))), (ALSEP, None)],
    ids=["GSE1-124.9999924Hz", "SEISAN-75.19Hz", "ALSEP-39.26Hz"],
)
def test_real_files_convert_and_snaps_are_logged(
    path: Path, snapped: str | None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real files convert at the target rate; a snap is logged with blob, block, both
    rates and the drift; 39.26 Hz is resampled exactly (no snap)."""
    blob = f"idx/real/{path.name}"
    with caplog.at_level(logging.WARNING, logger="shared_code.decimation_job"):
        out = _run(path, blob, tmp_path, _field())
    source = obspy.read(str(path))
    assert {tr.stats.sampling_rate for tr in out} == {20.0}
    ids = {tr.id for tr in out}
    assert len(ids) == len({tr.id for tr in source})
    snaps = [r.getMessage() for r in caplog.records if "decimated as" in r.getMessage()]
    if snapped is None:
        assert snaps == []
        return
    assert snaps, "the snap is logged"
    pattern = rf"^{re.escape(blob)}: block \d+: sampling rate ([0-9.]+) Hz decimated as "
    pattern += rf"{re.escape(snapped)} Hz .* moves by ([0-9.e-]+) ms \(allowed 0\.5 ms\)$"
    for message in snaps:
        match = re.match(pattern, message)
        assert match, message
        true = float(match.group(1))
        assert true == pytest.approx(source[0].stats.sampling_rate, rel=1e-9), message
        n = max(tr.stats.npts for tr in source)
        drift_ms = n * abs(1 / float(snapped) - 1 / true) * 1e3
        assert float(match.group(2)) == pytest.approx(drift_ms, rel=1e-2), message


def _mseed(path: Path, data: np.ndarray, rate: float, start_ns: int) -> None:
    tr = obspy.Trace(data, {"sampling_rate": rate, "starttime": obspy.UTCDateTime(ns=start_ns)})
    tr.stats.station, tr.stats.channel = "STA", "HHZ"
    tr.write(str(path), format="MSEED", encoding="FLOAT32")


def test_a_rate_that_would_drift_too_far_is_refused(tmp_path: Path) -> None:
    """200.02 Hz → 20 Hz (×1000/10001) is beyond the kernel limit; the nearest rate it can
    resample, 200 Hz, moves sample n by n × 0.5 µs: 900 samples pass (0.45 ms), 2000 do not
    (1 ms), refused permanently with the blob, both rates and the drift."""
    cfg = _field()
    ok = tmp_path / "ok.mseed"
    _mseed(ok, np.ones(900, np.float32), 200.02, 1_700_000_000 * NS)
    out = _run(ok, "idx/rates/ok.mseed", tmp_path / "share1", cfg)
    assert {tr.stats.sampling_rate for tr in out} == {20.0}

    bad = tmp_path / "bad.mseed"
    _mseed(bad, np.ones(2000, np.float32), 200.02, 1_700_000_000 * NS)
    blob = "idx/rates/bad.mseed"
    with pytest.raises(PERMANENT_ERRORS) as info:
        _run(bad, blob, tmp_path / "share2", cfg)
    message = str(info.value)
    assert message.startswith(f"{blob}: block 0: sampling rate 200.02"), message
    assert "target 20 Hz" in message and "200.0 Hz" in message, message
    drift = re.search(r"by ([0-9.]+) ms, more than the 0\.5 ms allowed", message)
    assert drift and float(drift.group(1)) == pytest.approx(1.0, rel=1e-3), message
    assert not list((tmp_path / "share2" / "mseed").rglob("*.mseed"))


def _tones(t_s: np.ndarray, freqs: np.ndarray, amp: float) -> np.ndarray:
    return amp * np.cos(2 * np.pi * freqs[:, None] * t_s[None, :] + 0.7).sum(axis=0)


def test_consecutive_snapped_files_join_seamlessly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two consecutive files of one 124.99999237 Hz stream (GSE1's drift-corrected rate as
    MiniSEED's blockette 100 keeps it) snap the same way and join: one contiguous 20 Hz trace
    across the boundary, whose values are the input's tones on the absolute output grid
    within the bound of the filters, the snap's timing error and the rounding."""
    probe = tmp_path / "probe.mseed"
    _mseed(probe, np.zeros(4, np.float32), 124.9999924, 0)
    rate = obspy.read(str(probe))[0].stats.sampling_rate  # as stored: float32
    f_true = exact_rate(rate)
    n1, n2 = 3000, 3500
    t2 = Fraction(1_700_000_100)  # the boundary, a whole second
    t1 = t2 - n1 / f_true
    freqs, amp = np.array([0.4, 2.3, 5.9]), 1000.0
    ref = Fraction(1_700_000_000)  # phases relative to a nearby time, for float accuracy
    share = tmp_path / "share"
    ensure_layout(share)
    cfg = _field()
    requests = []
    for name, start, n in (("a", t1, n1), ("b", t2, n2)):
        t = np.array([float(start + i / f_true - ref) for i in range(n)])
        path = tmp_path / f"{name}.mseed"
        start_ns = round(start * NS)
        _mseed(path, _tones(t, freqs, amp).astype(np.float32), rate, start_ns)
        blob = f"idx/stream/{name}.mseed"
        source = SourceBlob(
            url=f"https://acct.blob.core.windows.net/raw/{blob}", container="raw", name=blob,
            etag='"0x8D1"', event_id=name, event_time="2026-11-29T12:00:00+00:00",
        )  # fmt: skip
        with caplog.at_level(logging.WARNING, logger="shared_code.decimation_job"):
            request, _ = decimate_file(path, blob, share, cfg, source)
        requests.append(request)
        assert f"{blob}: block 0: sampling rate" in caplog.text, "snapped, and logged"
    for request in requests:
        convert_file(request, share, cfg)
    out = obspy.Stream()
    for mseed in sorted((share / "mseed").rglob("*.mseed")):
        out += obspy.read(str(mseed))
    assert len(out) == 2 and not out.get_gaps(), out  # a's interior, then seam + b's
    out.sort(["starttime"])
    a, b = out
    # b's first sample is the grid point right after a's last one.
    assert b.stats.starttime.ns - a.stats.endtime.ns == NS // 20
    merged = np.concatenate([a.data, b.data]).astype(np.float64)
    k0 = round(Fraction(a.stats.starttime.ns, NS) * 20)
    t_out = np.array([float(Fraction(k0 + i, 20) - ref) for i in range(merged.size)])
    want = _tones(t_out, freqs, amp)

    plan = design(125.0, 20.0)  # what both files are decimated with, snapped
    assert all(s.up == 1 for s in plan.stages[:-1])
    gain = math.prod(10 ** (s.passband_ripple_db / 20) for s in plan.stages)
    leak = (plan.stages[-1].up - 1) * 10 ** (-plan.stopband_attenuation_db / 20)
    drift = float(max(n1, n2) * abs(Fraction(1, 125) - 1 / f_true))
    # Per tone: passband gain deviation + the last (rational) stage's images (integer
    # stages add none for in-band tones) + the timing error of the snap (|d/dt| ≤ 2πf·a);
    # float32 work.
    bound = sum(
        amp * (gain - 1 + leak * gain) + 2 * np.pi * f * amp * drift for f in freqs
    ) + error_bound(plan, amp * freqs.size)
    err = np.abs(merged - want).max()
    assert err <= bound, (err, bound)
