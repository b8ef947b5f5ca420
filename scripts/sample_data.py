"""Synthetic sample data: a 4-C ocean-bottom array SEG-Y with microseismic events, and a
MiniSEED file from a small land network.

The SEG-Y mimics what a permanent reservoir monitoring array uploads: int32 counts at
1000 Hz, four components per station (Z, two horizontals, hydrophone), coloured background
noise, a narrow-band pump tone above the target Nyquist (which decimation must remove), and a
few events whose P and S arrivals move out across the array.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

START = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def _ricker(t: np.ndarray, f_hz: float) -> np.ndarray:
    a = (np.pi * f_hz * t) ** 2
    return (1 - 2 * a) * np.exp(-a)


def array_record(
    n_stations: int = 24,
    seconds: float = 30.0,
    rate_hz: float = 1000.0,
    n_events: int = 3,
    seed: int = 7,
) -> np.ndarray:
    """Synthetic 4-C array data, shape (4 * n_stations, samples), in counts (float64)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate_hz)
    t = np.arange(n) / rate_hz
    white = rng.standard_normal((4 * n_stations, n))
    # Brown-ish background: ocean microseism energy sits at low frequencies.
    spectrum = np.fft.rfft(white, axis=1)
    freqs = np.fft.rfftfreq(n, 1 / rate_hz)
    spectrum /= np.sqrt(1 + (freqs / 5.0) ** 2)
    data = np.fft.irfft(spectrum, n, axis=1) * 400.0
    data += 150.0 * np.sin(2 * np.pi * 337.0 * t + rng.uniform(0, 2 * np.pi, (4 * n_stations, 1)))
    offsets = np.linspace(0, 2400.0, n_stations)  # m along the cable
    for k in range(n_events):
        origin = seconds * (k + 1) / (n_events + 1)
        source_x = rng.uniform(0, 2400.0)
        depth = rng.uniform(1500.0, 2500.0)
        magnitude = 10 ** rng.uniform(3.3, 4.0)
        for s in range(n_stations):
            dist = np.hypot(offsets[s] - source_x, depth)
            tp, ts = origin + dist / 2800.0, origin + dist / 1500.0
            amp = magnitude * 1000.0 / dist
            p = _ricker(t - tp, 60.0) * amp
            sw = _ricker(t - ts, 35.0) * amp * 1.8
            data[4 * s + 0] += p + 0.3 * sw  # Z
            data[4 * s + 1] += 0.2 * p + sw  # horizontal 1
            data[4 * s + 2] += 0.1 * p + 0.7 * sw  # horizontal 2
            data[4 * s + 3] += 1.5 * p  # hydrophone: pressure, P only
    return data


def write_segy(
    path: Path,
    data: np.ndarray,
    rate_hz: float,
    start: datetime = START,
    sample_format: str = "int32",
) -> Path:
    """Write SEG-Y rev 1 (big-endian) with per-trace time headers: int32 counts (format code
    2) or IEEE float32 (format code 5)."""
    import segyio

    if sample_format == "int32":
        counts = np.clip(np.round(data), -(2**31), 2**31 - 1).astype(np.int32)
        code = 2
    elif sample_format == "float32":
        counts = data.astype(np.float32)
        code = 5
    else:
        raise ValueError(f"sample_format {sample_format!r}: expected int32 or float32")
    spec = segyio.spec()
    spec.format = code
    spec.samples = list(range(counts.shape[1]))
    spec.tracecount = counts.shape[0]
    spec.ilines = None
    spec.xlines = None
    interval_us = round(1e6 / rate_hz)
    day = start.timetuple().tm_yday
    with segyio.create(str(path), spec) as f:
        f.text[0] = segyio.tools.wrap(
            "C01 CCS-PASSIVE SYNTHETIC 4-C ARRAY  COMPONENTS Z 1 2 H PER STATION\n"
            f"C02 {sample_format.upper()}  {rate_hz:g} HZ  START {start.isoformat()}"
        )
        f.bin.update(
            {
                segyio.BinField.Interval: interval_us,
                segyio.BinField.Format: code,
                segyio.BinField.Samples: counts.shape[1],
                segyio.BinField.SEGYRevision: 1,
            }
        )
        for i in range(counts.shape[0]):
            f.header[i] = {
                segyio.TraceField.TRACE_SEQUENCE_LINE: i + 1,
                segyio.TraceField.TRACE_SEQUENCE_FILE: i + 1,
                segyio.TraceField.FieldRecord: 1,
                segyio.TraceField.TraceNumber: i + 1,
                segyio.TraceField.TRACE_SAMPLE_COUNT: counts.shape[1],
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval_us,
                segyio.TraceField.YearDataRecorded: start.year,
                segyio.TraceField.DayOfYear: day,
                segyio.TraceField.HourOfDay: start.hour,
                segyio.TraceField.MinuteOfHour: start.minute,
                segyio.TraceField.SecondOfMinute: start.second,
                segyio.TraceField.TimeBaseCode: 4,  # UTC
            }
            f.trace[i] = counts[i]
    return path


def split_record(
    out_dir: Path,
    data: np.ndarray,
    rate_hz: float,
    n_files: int,
    *,
    start: datetime = START,
    sample_format: str = "int32",
) -> list[Path]:
    """Cut one continuous record into ``n_files`` consecutive SEG-Y files (no gap, no
    overlap), as an array uploading a file every few minutes does."""
    from datetime import timedelta

    n = data.shape[1] // n_files
    paths = []
    for k in range(n_files):
        begin = start + timedelta(seconds=k * n / rate_hz)
        path = out_dir / f"part_{k:02d}.sgy"
        paths.append(write_segy(path, data[:, k * n : (k + 1) * n], rate_hz, begin, sample_format))
    return paths


def write_mseed(path: Path, stations: list[str], rate_hz: float = 500.0, seconds: float = 30.0,
                start: datetime = START) -> Path:  # fmt: skip
    """Write a Steim-2 MiniSEED file: three components per station, int32 counts."""
    from obspy import Stream, Trace, UTCDateTime

    data = array_record(n_stations=len(stations), seconds=seconds, rate_hz=rate_hz, seed=11)
    stream = Stream()
    for s, station in enumerate(stations):
        for c, comp in enumerate("ZNE"):
            counts = np.round(data[4 * s + c]).astype(np.int32)
            stream.append(Trace(counts, header={
                "network": "XO", "station": station, "location": "00", "channel": f"DH{comp}",
                "sampling_rate": rate_hz, "starttime": UTCDateTime(start),
            }))  # fmt: skip
    stream.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
    return path


def make_samples(out_dir: Path) -> dict[str, Path]:
    """Write the sample raw files; returns blob name -> local path, in upload order.

    The array record (90 s) is cut into three consecutive 30 s files, uploaded out of order
    (first, third, second) as happens when uploads race: the MiniSEED still joins without gap
    or overlap.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = split_record(out_dir, array_record(seconds=90.0, n_events=6), 1000.0, 3)
    mseed = write_mseed(out_dir / "oseberg_land.mseed", ["OSE01", "OSE02", "OSE03", "OSE04"])
    blobs = {
        f"snorre/2026/11/23/array_20261123T1200{30 * k:02d}.sgy": path
        for k, path in enumerate(parts)
    }
    order = [0, 2, 1]
    names = list(blobs)
    out = {names[k]: blobs[names[k]] for k in order}
    out["oseberg/2026/11/23/land_20261123T120000.mseed"] = mseed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    for blob, path in make_samples(args.out_dir).items():
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB) -> blob {blob}")


if __name__ == "__main__":
    main()
