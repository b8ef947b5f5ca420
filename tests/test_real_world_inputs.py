"""Real files from ObsPy's shipped test data, through decimate and convert, as a field sends them.

Issue #9's bar: any input ObsPy reads as waveforms converts, unless it holds no waveform
samples. Every case below is a file ObsPy itself tests its readers with (at least one per
waveform format family ObsPy 1.5 has test data for, plus the tricky ones: a full SEED volume,
noise between records, data offset 0, IBM words with unnormalised fractions, SEG-Y rev 2,
compressed files). Each runs through ``decimate_file`` and ``convert_file`` on a real share
directory, with a field whose SEED ids come from the trace headers and one whose ids come from
the trace positions, and the seam sweep emits the file's edges (a lone file's neighbours never
come). What is asserted, against ObsPy's own reading of the input:

- it converts (or is refused for a reason on :data:`REFUSALS`, with the blob named);
- the MiniSEED reads back with ObsPy, samples finite;
- one SEED id per distinct input channel;
- each channel's output rate is the field's target, or the input's when at or below it;
- each input channel became the output channel its channel number (and, for a header-sourced
  field, its codes) names, which starts and ends within one output sample (and half an input
  sample: seams split at the input grid) of the input, with the number of samples its
  segments' durations give at the output rate (±1 per segment);
- input at or below the target passes through sample for sample; for a few families the
  decimated values match an independent reference (scipy) within a bound derived from the
  filters' specifications (see :func:`_reference_bound`).
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
import pytest

from scripts.survey_obspy_testdata import fields_toml as _fields_toml
from shared_code.fields import FieldConfig, FieldRegistry, parse_fields
from shared_code.messages import SourceBlob
from shared_code.seam_sweep import sweep
from shared_code.share_layout import ensure_layout
from shared_code.stages import PERMANENT_ERRORS, convert_file, decimate_file
from shared_code.waveforms import TraceMeta
from tests import formats_helpers as fh

OBSPY = Path(obspy.__file__).parent
TARGET_HZ = 20.0


@dataclass(frozen=True)
class Case:
    """One real file: ObsPy's format name, its path under the obspy package, the field's
    target rate (Hz), and whether the decimated values are checked against the reference."""

    family: str
    path: str
    target_hz: float = TARGET_HZ
    values: bool = False

    @property
    def id(self) -> str:
        return f"{self.family}:{Path(self.path).name}"


def _io(family_dir: str, name: str) -> str:
    return f"io/{family_dir}/tests/data/{name}"


#: At least one file per waveform family ObsPy 1.5 has test data for; small files, most of
#: them above the 20 Hz target so that they are decimated, a few at or below it.
CASES: tuple[Case, ...] = (
    Case("MSEED", _io("mseed", "timingquality.mseed"), values=True),
    Case("MSEED", _io("mseed", "test.mseed")),
    Case("MSEED", _io("mseed", "gaps.mseed")),  # 4 segments of one channel
    Case("MSEED", _io("mseed", "encoding/float64_Float64_bigEndian.mseed")),
    Case("MSEED", _io("mseed", "fullseed.mseed")),  # full SEED volume: control headers first
    Case("MSEED", _io("mseed", "various_noise_records.mseed")),  # noise between records
    Case("MSEED", _io("mseed", "single_record_plus_noise_record.mseed")),
    Case("MSEED", _io("mseed", "bizarre/mseed_data_offset_0.mseed")),
    Case("MSEED", _io("mseed", "three_records_zero_data_in_middle.mseed")),
    Case("MSEED", _io("mseed", "constructedFileToTestReadViaRecords.mseed")),  # BW. and OB.
    Case("MSEED", _io("mseed", "encoding/fullASCII_bigEndian.mseed")),  # refused: log records
    Case("MSEED", _io("mseed", "rt130_sr0_cropped.mseed")),  # refused: 0 Hz
    Case("SAC", _io("sac", "seism.sac")),
    Case("SAC", _io("sac", "non_ascii.sac")),  # refused: no samples
    Case("SACXY", _io("sac", "testxy.sac")),
    Case("GSE2", _io("gse2", "loc_RJOB20050831023349.z"), values=True),
    Case("GSE2", _io("gse2", "boa___00_07a.gse")),  # network code 'abcdef'
    Case("GSE1", _io("gse2", "acc.gse")),  # 19.9999997 Hz
    Case("GSE1", _io("gse2", "loc_STAU20031119011659.z")),  # 124.9999924 Hz: snapped
    Case("SEGY", _io("segy", "00001034.sgy_first_trace"), target_hz=100.0, values=True),
    Case("SEGY", _io("segy", "1.sgy_first_trace")),
    Case("SU", _io("segy", "1.su_first_trace")),
    Case("SEG2", _io("seg2", "20180307_031245000.0.seg2")),
    Case("SEG2", _io("seg2", "20130107_103041000.CET.3c.cont.0.seg2.gz")),
    Case("WIN", _io("win", "10030302.00")),
    Case("CSS", _io("css", "test_css.wfdisc")),
    Case("NNSA_KB_CORE", _io("css", "test_nnsa.wfdisc")),
    Case("KNET", _io("nied", "test.knet")),
    Case("REFTEK130", _io("reftek", "225051000_00008656")),
    Case("REFTEK130", _io("reftek", "221935615_00000000")),
    Case("DMX", _io("dmx", "131114_090600.dmx")),
    Case("AH", _io("ah", "ah1.f")),
    Case("AH", _io("ah", "TSG/BRV.TSG.DS.lE21.resp")),
    Case("SH_ASC", _io("sh", "QFILE-TEST-ASC.ASC")),
    Case("Q", _io("sh", "QFILE-TEST.QHD")),
    Case("SEISAN", _io("seisan", "2005-07-23-1452-04S.CER___030"), values=True),
    Case("SEISAN", _io("seisan", "9701-30-1048-54S.MVO_21_1")),  # 75.19 Hz: snapped
    Case("TSPAIR", _io("ascii", "tspair.ascii")),
    Case("TSPAIR", _io("ascii", "tspair.ascii.gz")),
    Case("SLIST", _io("ascii", "slist.ascii")),
    Case("SLIST", _io("ascii", "slist.ascii.bz2")),
    Case("SLIST", "core/tests/data/test.zip"),
    Case("SLIST", "core/tests/data/test.tar.gz"),
    Case("PDAS", _io("pdas", "p1246001.108")),
    Case("GCF", _io("gcf", "20160603_1910n.gcf")),
    Case("RG16", _io("rg16", "three_chans_six_traces.fcnt")),
    Case("RG16", _io("rg16", "header_3_chan_one_code.dat")),  # refused: no samples
    Case("KINEMETRICS_EVT", _io("kinemetrics", "BI008_MEMA-04823.evt"), values=True),
    Case("KINEMETRICS_EVT", _io("kinemetrics", "STNA.20020722.044649.evt.gz")),
    Case("Y", _io("y", "YAYT_BHZ_20021223.124800")),
    Case("WAV", _io("wav", "3cssan.near.8.1.RNON.wav")),
    Case("ALSEP_PSE", _io("alsep", "pse.a12.10.91.mini")),
    Case("ALSEP_WTN", _io("alsep", "wtn.6.30.mini")),
    Case("ALSEP_WTH", _io("alsep", "wth.1.5.mini")),  # 39.26 Hz: ×1000/1963
    Case("CYBERSHAKE", _io("cybershake", "test.grm")),
)

#: The only refusals allowed: files that hold no waveform samples. Path -> (what the reason
#: must say, why that is right).
REFUSALS: dict[str, tuple[str, str]] = {
    _io("mseed", "encoding/fullASCII_bigEndian.mseed"): (
        r"log record|text|ASCII|not numeric",
        "miniSEED log records: ASCII text (encoding 0), no samples",
    ),
    _io("mseed", "rt130_sr0_cropped.mseed"): (
        r"sampling rate 0(\.0)? Hz|zero sampling rate|rate of 0|no waveform data",
        "sampling rate 0: no time base, state-of-health records of an RT130",
    ),
    _io("sac", "non_ascii.sac"): (
        r"no (waveform )?samples|0 samples|holds no traces",
        "a SAC header with NPTS = 0",
    ),
    _io("rg16", "header_3_chan_one_code.dat"): (
        r"no (waveform )?samples|0 samples|holds no traces",
        "RG16 headers only: every trace has 0 samples",
    ),
}
#: Refusals of one field kind only: files whose channels the header-sourced field cannot tell
#: apart (the SEED id's band code comes from the output rate and its component from the
#: header code's last letter), so two input channels would become one stream. Refused with
#: both input ids named, never mixed; the index-sourced field converts them.
FIELD_REFUSALS: dict[tuple[str, str], tuple[str, str]] = {
    (_io("alsep", "pse.a12.10.91.mini"), "hdr"): (
        r"input channels .* would both become SEED id",
        "ALSEP LPZ and SPZ (and LPX, whose X has no sensor) of one station",
    ),
    (_io("alsep", "wtn.6.30.mini"), "hdr"): (
        r"input channels .* would both become SEED id",
        "ALSEP LPZ and SPZ (and LPX, whose X has no sensor) of one station",
    ),
}


def test_every_case_is_an_obspy_waveform_file_of_its_family() -> None:
    """The cases are what they claim: ObsPy reads each as its family (so a refusal above is
    about the file, not a wrong path), and every family with test data is covered."""
    from obspy.core.util.base import ENTRY_POINTS

    for case in CASES:
        st = obspy.read(str(OBSPY / case.path))
        assert {tr.stats._format for tr in st} == {case.family}, case.id
    covered = {c.family for c in CASES}
    # PICKLE is ObsPy's own serialisation (no test data file of it); everything else is here.
    assert set(ENTRY_POINTS["waveform"]) - covered == {"PICKLE"}


# --------------------------------------------------------------------------------------------
# The pipeline on one file


def _blob(field: str, case: Case) -> str:
    name = re.sub(r"[^A-Za-z0-9._+=@-]", "_", Path(case.path).name)
    return f"{field}/{case.family.lower()}/{name}"


def _run(path: Path, blob: str, share: Path, cfg: FieldConfig) -> obspy.Stream:
    """decimate + convert, then the seam sweep as after the timeout; all MiniSEED read back."""
    ensure_layout(share)
    source = SourceBlob(
        url=f"https://acct.blob.core.windows.net/raw/{blob}", container="raw", name=blob,
        etag='"0x8D1"', event_id="e1", event_time="2026-11-29T12:00:00+00:00",
    )  # fmt: skip
    request, _ = decimate_file(path, blob, share, cfg, source)
    convert_file(request, share, cfg)
    registry = FieldRegistry({cfg.name: cfg})
    sweep(share, registry, timeout_minutes=0, now=time.time() + 3600)
    out = obspy.Stream()
    for mseed in sorted((share / "mseed").rglob("*.mseed")):
        out += obspy.read(str(mseed), format="MSEED")
    return out


def _read_any(path: Path) -> obspy.Stream:
    """The input as ObsPy reads it, or an empty stream where it reads none (refusals)."""
    try:
        return obspy.read(str(path))
    except Exception:
        return obspy.Stream()


def _read_input(path: Path) -> obspy.Stream:
    """The input as ObsPy reads it; SEG-Y and SU start times with the delay recording time
    applied, as this project reads them (shared_code/formats/traceheader.py: first sample =
    time zero + DelayRecordingTime, scaled by bytes 215-216) where ObsPy leaves it out."""
    st = obspy.read(str(path))
    for tr in st:
        header = tr.stats.get("segy", tr.stats.get("su", {})).get("trace_header")
        if header is not None:
            delay_ms = Fraction(int(header.delay_recording_time))
            scalar = int(header.scalar_to_be_applied_to_times)
            delay_ms = delay_ms * scalar if scalar > 0 else delay_ms / (-scalar or 1)
            tr.stats.starttime += float(delay_ms / 1000)
    return st


def _channels(st: obspy.Stream) -> dict[str, list[obspy.Trace]]:
    """Traces with samples by channel: the SEED id, or the trace's position where the format
    has no codes (SEG-Y, SU, SEG-2: every trace is its own channel)."""
    out: dict[str, list[obspy.Trace]] = defaultdict(list)
    for i, tr in enumerate(st):
        if tr.stats.npts:
            out[tr.id if tr.id != "..." else f"#{i}"].append(tr)
    return out


def _expected_ids(source: dict[str, list[obspy.Trace]], cfg: FieldConfig) -> dict[str, str]:
    """Input channel -> the SEED id it must become: channel numbers in order of first
    appearance (``source`` keeps the file's order), codes from the input's headers."""
    ids = {}
    for number, (key, traces) in enumerate(source.items()):
        stats = traces[0].stats
        rate = min(stats.sampling_rate, cfg.target_rate_hz)
        meta = TraceMeta(number, stats.network, stats.station, stats.location, stats.channel)
        ids[key] = cfg.seed_id(meta, rate)
    return ids


def _span(traces: list[obspy.Trace]) -> tuple[int, int]:
    """First sample's time and the time just after the last sample, ns."""
    start = min(tr.stats.starttime.ns for tr in traces)
    end = max(tr.stats.starttime.ns + round(tr.stats.npts / tr.stats.sampling_rate * 1e9)
              for tr in traces)  # fmt: skip
    return start, end


@pytest.mark.parametrize("field", ["hdr", "idx"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_real_file_converts(case: Case, field: str, tmp_path: Path) -> None:
    path = OBSPY / case.path
    cfg = parse_fields(_fields_toml(case.target_hz, _read_any(path))).get(field)
    blob = _blob(field, case)
    refusal = REFUSALS.get(case.path) or FIELD_REFUSALS.get((case.path, field))
    if refusal is not None:
        pattern, why = refusal
        with pytest.raises(PERMANENT_ERRORS) as info:
            _run(path, blob, tmp_path, cfg)
        message = str(info.value)
        assert blob in message, message
        assert re.search(pattern, message, re.IGNORECASE), f"{message!r}; expected: {why}"
        return
    _assert_converts(path, blob, tmp_path, cfg, values=case.values)


def _assert_converts(
    path: Path, blob: str, share: Path, cfg: FieldConfig, *, values: bool = False
) -> None:
    """Everything the module docstring lists, for one file and one field."""
    target_hz = cfg.target_rate_hz
    out = _run(path, blob, share, cfg)
    source = _channels(_read_input(path))
    got = _channels(out)

    assert all(np.isfinite(tr.data).all() for tr in out), "non-finite samples in the MiniSEED"
    assert len(got) == len(source), (sorted(source), sorted(got))

    # Channel for channel: each input channel's SEED id (its channel number and, for a
    # header-sourced field, its codes) names the output channel it must have become.
    expected = _expected_ids(source, cfg)
    assert sorted(expected.values()) == sorted(got), (expected, sorted(got))
    segments = max(len(t) for t in source.values())
    for key, traces in source.items():
        rate_in = traces[0].stats.sampling_rate
        rate_out = rate_in if rate_in <= target_hz else target_hz
        start, end = _span(traces)
        n_out = round(sum(tr.stats.npts / rate_in * rate_out for tr in traces))
        # One output sample, + µs rounding, + half an input sample: a file's seams split at
        # its boundary key, its start rounded to the input grid, so a file off that grid
        # (ALSEP's 6.625 Hz traces start 0.71 sample off) loses the outputs between its first
        # sample and the key to the neighbour that would own them.
        tolerance_ns = 1e9 / rate_out + 0.5e9 / rate_in + 2_000
        out = got[expected[key]]
        have_start, have_end = _span(out)
        assert out[0].stats.sampling_rate == pytest.approx(rate_out, rel=1e-6), key
        assert abs(have_start - start) <= tolerance_ns, (key, "start", have_start, start)
        assert abs(have_end - end) <= tolerance_ns, (key, "end", have_end, end)
        assert abs(sum(tr.stats.npts for tr in out) - n_out) <= segments, (key, "samples")

    for traces in source.values():
        if traces[0].stats.sampling_rate <= target_hz:
            _assert_passed_through(traces, got)
    if values:
        _assert_matches_reference(source, got, target_hz)


def _assert_passed_through(traces: list[obspy.Trace], got: dict[str, list[obspy.Trace]]) -> None:
    """Some output channel holds the input channel's samples exactly (floats as float32)."""
    want = np.concatenate([tr.data for tr in traces])
    cast = np.float32 if want.dtype.kind == "f" else np.int64
    for out in got.values():
        data = np.concatenate([tr.data for tr in out])
        if data.shape == want.shape and np.array_equal(data.astype(cast), want.astype(cast)):
            return
    raise AssertionError(f"{traces[0].id}: no output channel holds the input samples unchanged")


# --------------------------------------------------------------------------------------------
# Decimated values against an independent reference

#: Our filters' documented specification (README, "Decimation"): passband ripple ≤ 0.05 dB up
#: to 0.8 × the output Nyquist, alias rejection ≥ 100 dB above it.
OUR_RIPPLE = 10 ** (0.05 / 20) - 1
OUR_STOPBAND = 10 ** (-100 / 20)
#: The reference and the common comparison filter: Kaiser windows for 120 dB, whose passband
#: and stopband deviations are both 10**(-120/20) (Kaiser's design formula, as
#: scipy.signal.kaiserord implements it).
REF_DB = 120.0
REF_DEV = 10 ** (-REF_DB / 20)


def _kaiser_lowpass(pass_hz: float, stop_hz: float, fs: float) -> np.ndarray:
    from scipy.signal import firwin, kaiserord

    numtaps, beta = kaiserord(REF_DB, (stop_hz - pass_hz) / (fs / 2))
    numtaps |= 1  # odd: a whole-sample group delay
    return firwin(numtaps, (pass_hz + stop_hz) / 2, window=("kaiser", beta), fs=fs)


def _reference(x: np.ndarray, fs_in: float, fs_out: float) -> tuple[np.ndarray, float]:
    """``x`` (first sample on the output grid) anti-alias filtered and resampled by scipy:
    output n at the time of input sample 0 + n / fs_out. Returns it and its filter's
    half-length (s)."""
    from scipy.signal import resample_poly

    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    nyquist = fs_out / 2
    h = _kaiser_lowpass(0.8 * nyquist, nyquist, up * fs_in)
    return resample_poly(x.astype(np.float64), up, down, window=h), (len(h) // 2) / (up * fs_in)


def _reference_bound(x: np.ndarray, integer: bool) -> float:
    """RMS bound on |ours - reference| after both pass the same low-pass below 0.8 × Nyquist.

    Below 0.8 × Nyquist the two responses differ by at most our ripple plus the reference's;
    what aliases in is attenuated by at least 100 dB (ours) and 120 dB (reference); the band
    between 0.8 × Nyquist and Nyquist, where they may differ freely (twice the input at
    most), is removed by the common low-pass to its stopband deviation. By Parseval each
    term is bounded by that factor times the input's RMS; x2 covers the finite window's
    leakage. Integer output is rounded to counts (≤ 0.5 count after the unit-gain low-pass);
    float output is float32 (relative 2**-24).
    """
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    factor = (1 + REF_DEV) * (OUR_RIPPLE + REF_DEV + OUR_STOPBAND + REF_DEV) + 2 * REF_DEV
    quantisation = 0.5 if integer else 2.0**-24 * float(np.max(np.abs(x)))
    return 2 * factor * rms + quantisation


def _assert_matches_reference(
    source: dict[str, list[obspy.Trace]], got: dict[str, list[obspy.Trace]], fs_out: float
) -> None:
    """Each input channel's decimation matches some output channel's in the passband."""
    from shared_code.dsp import design

    for key, traces in source.items():
        [tr] = traces  # the value cases are chosen with one segment per channel
        fs_in = tr.stats.sampling_rate
        # Start the reference on the output grid: drop the input samples before it.
        start = Fraction(tr.stats.starttime.ns, 10**9)
        first_out = math.ceil(start * Fraction(fs_out).limit_denominator(10**6))
        skip = (Fraction(first_out) / Fraction(fs_out).limit_denominator(10**6) - start) * (
            Fraction(fs_in).limit_denominator(10**6)
        )
        assert skip.denominator == 1, f"{key}: chosen so that an input sample is on the grid"
        x = tr.data[int(skip) :]
        ref, ref_half_s = _reference(x, fs_in, fs_out)
        g = _kaiser_lowpass(0.6 * fs_out / 2, 0.8 * fs_out / 2, fs_out)
        # Outputs within reach of an edge (our support, the reference's, the low-pass's)
        # differ by how each treats the missing input: compared only inside.
        margin = math.ceil((float(design(fs_in, fs_out).support) + ref_half_s) * fs_out)
        margin += len(g) // 2 + 1
        bound = _reference_bound(x, tr.data.dtype.kind in "iu")
        errors = []
        for out in got.values():
            merged = obspy.Stream(out).copy().merge(method=-1)
            if len(merged) != 1:
                continue  # the time checks report gaps and overlaps
            [o] = merged
            offset = round((o.stats.starttime.ns - first_out / fs_out * 1e9) * fs_out / 1e9)
            n = min(len(ref), offset + o.stats.npts) - max(0, offset)
            if n <= 2 * margin + len(g):
                continue
            lo = max(0, offset)
            ours = o.data[lo - offset : lo - offset + n].astype(np.float64)
            theirs = ref[lo : lo + n]
            diff = np.convolve(ours - theirs, g, mode="valid")[margin:-margin]
            errors.append(float(np.sqrt(np.mean(diff**2))))
        assert errors, f"{key}: no output channel overlaps the reference's interior"
        assert min(errors) <= bound, (key, min(errors), bound)


# --------------------------------------------------------------------------------------------
# Cases that are not files in ObsPy's test data


def test_segy_rev2_converts(tmp_path: Path) -> None:
    """SEG-Y rev 2 (no reader in ObsPy): trace header extension, µs interval in the extended
    binary header words, ns start; the MiniSEED passes the samples through (target above)."""
    path = tmp_path / "rev2.sgy"
    data = fh.make_segy_rev2(path, 3, 2000, 1000.0, "int32", extensions=2)
    cfg = parse_fields(_fields_toml(1000.0)).get("idx")
    out = _run(path, "idx/segy/rev2.sgy", tmp_path / "share", cfg)
    rows = {tr.id: tr.data for tr in out}
    assert len(rows) == 3
    got = sorted(rows.values(), key=lambda d: d[:4].tolist())
    want = sorted(data, key=lambda d: d[:4].tolist())
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_segy_with_traces_of_different_lengths_converts(tmp_path: Path) -> None:
    """ObsPy writes (and reads) SEG-Y whose traces differ in length, each trace header giving
    its own sample count (bytes 115-116)."""
    st = obspy.Stream()
    for i, n in enumerate((15000, 22500, 10000)):  # 30, 45, 20 s: a compared interior
        data = np.sin(np.arange(n) * 0.01 * (i + 1)).astype(np.float32) * 1000
        tr = obspy.Trace(data, {"sampling_rate": 500.0, "starttime": obspy.UTCDateTime(2026, 1, 1)})
        st.append(tr)
    path = tmp_path / "variable.sgy"
    st.write(str(path), format="SEGY", data_encoding=5)
    cfg = parse_fields(_fields_toml(TARGET_HZ)).get("idx")
    _assert_converts(path, "idx/segy/variable.sgy", tmp_path / "share", cfg, values=True)


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.family in ("CSS", "NNSA_KB_CORE", "Q")],
    ids=lambda c: c.id,
)
def test_a_header_file_without_its_data_files_is_refused_clearly(
    case: Case, tmp_path: Path
) -> None:
    """CSS/NNSA (.wfdisc + .w) and Q (.QHD + .QBN) keep the samples in other files. A blob
    is spooled alone (as the decimate function does), so its header cannot find them: a
    permanent refusal naming the blob, not a crash or a retried transient error."""
    spool = tmp_path / "spool"
    spool.mkdir()
    shutil.copy(OBSPY / case.path, spool / "raw")
    cfg = parse_fields(_fields_toml(TARGET_HZ)).get("idx")
    blob = _blob("idx", case)
    with pytest.raises(PERMANENT_ERRORS) as info:
        _run(spool / "raw", blob, tmp_path / "share", cfg)
    assert blob in str(info.value)
