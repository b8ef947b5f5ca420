"""Summaries and pictures of what the pipeline wrote, for people rather than tests."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np

from shared_code.failures import list_failures
from shared_code.share_layout import mseed_files


def summarize(share_root: Path, blob_names: list[str], out: TextIO) -> bool:
    """Print one line per file (traces, rates, samples, seconds); True if all converted."""
    from obspy import read

    ok = True
    for blob in blob_names:
        found = mseed_files(share_root, blob)
        if not found:
            ok = False
            print(f"    {blob}: NO MiniSEED", file=out)
            continue
        mseed = max(found, key=lambda p: p.stat().st_mtime_ns)  # the newest version's
        st = read(str(mseed), format="MSEED", details=True)
        rates = sorted({tr.stats.sampling_rate for tr in st})
        samples = sum(tr.stats.npts for tr in st)
        seconds = max(tr.stats.npts / tr.stats.sampling_rate for tr in st)
        encodings = sorted({tr.stats.mseed.encoding for tr in st})
        reclens = sorted({tr.stats.mseed.record_length for tr in st})
        ids = sorted({tr.id for tr in st})
        print(
            f"    {blob}: {len(st)} traces, {len(ids)} SEED ids ({ids[0]} ...), "
            f"{'/'.join(f'{r:g}' for r in rates)} Hz, {samples} samples, {seconds:.2f} s, "
            f"{'/'.join(encodings)} in {'/'.join(map(str, reclens))}-byte records -> "
            f"{mseed.relative_to(share_root)}",
            file=out,
        )
    for path, record in list_failures(share_root):
        ok = False
        print(f"    FAILED {record.get('blob')}: {record.get('reason')} ({path})", file=out)
    return ok


def joins(share_root: Path, out: TextIO) -> bool:
    """Per field, all MiniSEED merged: streams, time span, gaps and overlaps (want none)."""
    from obspy import Stream, read

    ok = True
    for field_dir in sorted(p for p in (share_root / "mseed").iterdir() if p.is_dir()):
        st = Stream()
        files = sorted(field_dir.rglob("*.mseed"))
        for path in files:
            st += read(str(path))
        gaps = st.get_gaps()
        st.merge(method=-1)
        start = min(tr.stats.starttime for tr in st)
        end = max(tr.stats.endtime for tr in st)
        ok = ok and not gaps
        print(
            f"    {field_dir.name}: {len(files)} MiniSEED files -> {len(st)} continuous streams, "
            f"{start} - {end}, {len(gaps)} gaps/overlaps",
            file=out,
        )
    return ok


def _spectrum_db(x: np.ndarray, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    x = x - x.mean()
    window = np.hanning(len(x))
    amp = np.abs(np.fft.rfft(x * window)) / (window.sum() / 2)
    return np.fft.rfftfreq(len(x), 1 / rate_hz), 20 * np.log10(np.maximum(amp, 1e-12))


def plot_before_after(
    raw_path: Path, share_root: Path, blob: str, png: Path, channel: int = 0
) -> None:
    """One channel before and after decimation: waveform (top) and amplitude spectrum (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from obspy import read

    from shared_code import formats

    raw = formats.read(raw_path, name=blob)
    block = raw.blocks[0]
    before = block.data[channel].astype(np.float64)
    t_before = np.arange(before.size) / block.sampling_rate
    newest = max(mseed_files(share_root, blob), key=lambda p: p.stat().st_mtime_ns)
    after_tr = read(str(newest))[channel]
    after = after_tr.data.astype(np.float64)
    offset = (after_tr.stats.starttime.ns - block.starttime_ns) / 1e9
    t_after = offset + np.arange(after.size) / after_tr.stats.sampling_rate

    fig, (ax1, ax_zoom, ax2) = plt.subplots(3, 1, figsize=(11, 10))
    ax1.plot(t_before, before, lw=0.5, color="0.6", label=f"raw {block.sampling_rate:g} Hz")
    ax1.plot(
        t_after,
        after,
        lw=0.8,
        color="C3",
        label=f"{after_tr.id} {after_tr.stats.sampling_rate:g} Hz",
    )
    ax1.set_xlabel("seconds after file start")
    ax1.set_ylabel("counts")
    ax1.set_title(f"{blob}, trace {channel}: before and after decimation")
    ax1.legend(loc="upper right")
    # The largest arrival, close up: timing and waveform shape are what a picker sees.
    peak = t_before[int(np.argmax(np.abs(before - before.mean())))]
    for t, x, style in ((t_before, before, dict(color="0.6", lw=0.8, marker=".", ms=2)),
                        (t_after, after, dict(color="C3", lw=1.0, marker="o", ms=3))):  # fmt: skip
        sel = (t > peak - 0.15) & (t < peak + 0.15)
        ax_zoom.plot(t[sel], x[sel], **style)
    ax_zoom.set_xlabel("seconds after file start (largest arrival, ±0.15 s)")
    ax_zoom.set_ylabel("counts")
    for x, rate, style, label in (
        (before, block.sampling_rate, dict(color="0.6", lw=0.6), "raw"),
        (after, after_tr.stats.sampling_rate, dict(color="C3", lw=0.8), "decimated"),
    ):
        f, db = _spectrum_db(x, rate)
        ax2.plot(f, db, label=label, **style)
    ax2.axvline(after_tr.stats.sampling_rate / 2, color="k", ls="--", lw=0.7, label="new Nyquist")
    ax2.set_xscale("log")
    ax2.set_xlim(0.5, block.sampling_rate / 2)
    ax2.set_xlabel("frequency (Hz)")
    ax2.set_ylabel("amplitude (dB re 1 count)")
    ax2.legend(loc="lower left")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
