"""Decimation speed: ours vs ObsPy's Stream.decimate vs scipy.signal, one core, same data.

Default case: 2000 channels × 60 s × 1000 Hz float32 → 100 Hz. Every contender runs in its
own fresh process (peak RSS per contender; includes the input record itself, reported
separately as ``input_rss_mb``), single-threaded (BLAS pools pinned to 1 thread). Prints
progress, a table with each contender's time against ours, and writes
``benchmarks/results/decimate.json``.

    .venv/bin/python -m benchmarks.bench_decimate [--channels 2000 --seconds 60 --rate 1000
        --target 100 --dtype float32|int32 --repeat 3 --skip obspy]

Contenders: ``ours`` (shared_code.dsp, mode="extend"), ``obspy`` (Stream.decimate: Chebyshev
II IIR lowpass then every n-th sample, what a seismologist writes; integer factors only),
``scipy_decimate`` (scipy.signal.decimate, ftype="fir", zero_phase=True; integer factors
only), ``scipy_resample_poly`` (scipy.signal.resample_poly, any rational ratio) and
``strided`` (x[:, ::q] with no filter at all: the memory-bandwidth floor, integer only).
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks import harness

CONTENDERS = ["ours", "obspy", "scipy_decimate", "scipy_resample_poly", "strided"]
T0_NS = 1_700_000_000 * 1_000_000_000


def make_record(channels: int, seconds: float, rate: float, dtype: str) -> np.ndarray:
    """Synthetic record: noise + a few tones in and above the pass band, traces × samples.

    int32 records are counts around a DC offset (what digitizers deliver).
    """
    n = round(seconds * rate)
    rng = np.random.default_rng(1234)
    t = (np.arange(n, dtype=np.float64) / rate)[None, :]
    tones = sum(0.5 * np.sin(2 * np.pi * f * t) for f in (3.0, 0.3 * rate, 0.45 * rate))
    out = np.empty((channels, n), dtype=dtype)
    # Built in chunks of traces so that the generator's temporaries do not inflate the
    # contenders' peak RSS: the record itself is what they all share.
    for c0 in range(0, channels, 64):
        c1 = min(channels, c0 + 64)
        x = rng.standard_normal((c1 - c0, n)) + tones
        out[c0:c1] = x * 20_000 + 1_000_000 if dtype == "int32" else x
    return out


def _setup(channels: int, seconds: float, rate: float, dtype: str) -> tuple[np.ndarray, float]:
    before = harness.current_rss_mb()
    x = make_record(channels, seconds, rate, dtype)
    return x, harness.current_rss_mb() - before


def _result(name: str, times: list[float], x: np.ndarray, input_mb: float, **extra: Any) -> dict:
    return {
        "name": name,
        "times_s": [round(t, 4) for t in times],
        "best_s": round(min(times), 4),
        "samples_per_s": round(x.size / min(times)),
        "input_samples": int(x.size),
        "input_rss_mb": round(input_mb, 1),
        **extra,
    }


def work_ours(
    *, channels: int, seconds: float, rate: float, target: float, dtype: str, repeat: int
) -> dict:
    t = time.perf_counter()
    from shared_code.dsp import decimate, design

    import_s = time.perf_counter() - t
    x, input_mb = _setup(channels, seconds, rate, dtype)
    t = time.perf_counter()
    plan = design(rate, target)
    design_s = time.perf_counter() - t
    harness.progress(f"ours: {plan.describe()}")
    first = time.perf_counter()
    out = decimate(x, T0_NS, plan)
    first_s = time.perf_counter() - first
    times = harness.time_calls(lambda: decimate(x, T0_NS, plan), repeat)
    return _result(
        "ours",
        times,
        x,
        input_mb,
        first_call_s=round(first_s, 4),
        design_s=round(design_s, 5),
        import_s=round(import_s, 4),
        output_shape=list(out.data.shape),
        output_dtype=str(out.data.dtype),
        plan=plan.describe(),
        support_ms=round(float(plan.support) * 1000, 3),
        stopband_attenuation_db=round(plan.stopband_attenuation_db, 2),
        passband_ripple_db=plan.passband_ripple_db,
        blas=harness.blas_info(),
    )


def work_obspy(
    *, channels: int, seconds: float, rate: float, target: float, dtype: str, repeat: int
) -> dict:
    from obspy import Stream, Trace

    factor = _integer_factor(rate, target)
    x, input_mb = _setup(channels, seconds, rate, dtype)
    # Warm-up on one short trace: the first decimate imports obspy.signal (~2.4 s), which is
    # cold-start cost, not throughput.
    t = time.perf_counter()
    Stream([Trace(data=x[0, : 10 * factor].copy(), header={"sampling_rate": rate})]).decimate(
        factor, no_filter=False
    )
    warmup_s = time.perf_counter() - t

    def run() -> Stream:
        # A fresh Stream per run: decimate works in place. Building it is not timed.
        st = Stream([Trace(data=x[i], header={"sampling_rate": rate}) for i in range(len(x))])
        t = time.perf_counter()
        st.decimate(factor, no_filter=False)
        run.elapsed = time.perf_counter() - t  # type: ignore[attr-defined]
        return st

    times = []
    for _ in range(max(1, repeat)):
        st = run()
        times.append(run.elapsed)  # type: ignore[attr-defined]
    return _result(
        "obspy",
        times,
        x,
        input_mb,
        output_dtype=str(st[0].data.dtype),
        filter="cheby2 IIR",
        first_call_s=round(warmup_s, 4),
    )


def work_scipy_decimate(
    *, channels: int, seconds: float, rate: float, target: float, dtype: str, repeat: int
) -> dict:
    from scipy import signal

    factor = _integer_factor(rate, target)
    x, input_mb = _setup(channels, seconds, rate, dtype)
    times = harness.time_calls(
        lambda: signal.decimate(x, factor, ftype="fir", zero_phase=True, axis=-1), repeat
    )
    return _result("scipy_decimate", times, x, input_mb, filter=f"firwin({20 * factor + 1})")


def work_scipy_resample_poly(
    *, channels: int, seconds: float, rate: float, target: float, dtype: str, repeat: int
) -> dict:
    from scipy import signal

    ratio = Fraction(target).limit_denominator(10_000) / Fraction(rate).limit_denominator(10_000)
    x, input_mb = _setup(channels, seconds, rate, dtype)
    up, down = ratio.numerator, ratio.denominator
    times = harness.time_calls(lambda: signal.resample_poly(x, up, down, axis=-1), repeat)
    return _result("scipy_resample_poly", times, x, input_mb, up=up, down=down)


def work_strided(
    *, channels: int, seconds: float, rate: float, target: float, dtype: str, repeat: int
) -> dict:
    factor = _integer_factor(rate, target)
    x, input_mb = _setup(channels, seconds, rate, dtype)
    times = harness.time_calls(x[:, ::factor].copy, repeat)
    return _result("strided", times, x, input_mb, filter="none")


def _integer_factor(rate: float, target: float) -> int:
    ratio = Fraction(rate).limit_denominator(10_000) / Fraction(target).limit_denominator(10_000)
    if ratio.denominator != 1:
        raise ValueError(f"{rate} → {target} Hz is not an integer factor")
    return int(ratio)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--channels", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="input rate, Hz")
    ap.add_argument("--target", type=float, default=100.0, help="output rate, Hz")
    ap.add_argument("--dtype", choices=["float32", "int32", "float64"], default="float32")
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed runs of every contender, best reported"
    )
    ap.add_argument("--skip", nargs="*", default=[], choices=CONTENDERS)
    ap.add_argument("--out", type=Path, default=harness.RESULTS / "decimate.json")
    args = ap.parse_args(argv)

    case = {
        "channels": args.channels,
        "seconds": args.seconds,
        "rate": args.rate,
        "target": args.target,
        "dtype": args.dtype,
    }
    integer_ratio = (
        Fraction(args.rate).limit_denominator(10_000)
        % Fraction(args.target).limit_denominator(10_000)
        == 0
    )
    n_samples = round(args.channels * args.seconds * args.rate)
    harness.progress(
        f"case: {args.channels} ch × {args.seconds:g} s × {args.rate:g} Hz {args.dtype} "
        f"→ {args.target:g} Hz ({n_samples / 1e6:.0f} M samples)"
    )
    harness.progress("import time of shared_code.dsp (fresh interpreters)")
    import_s = harness.import_time_s("shared_code.dsp")
    harness.progress(f"  {import_s * 1000:.0f} ms")

    results: dict[str, dict[str, Any]] = {}
    for name in CONTENDERS:
        if name in args.skip:
            continue
        if name in ("obspy", "scipy_decimate", "strided") and not integer_ratio:
            harness.progress(f"{name}: skipped (rational ratio)")
            continue
        repeat = args.repeat
        harness.progress(f"{name}: running ({repeat}×) …")
        res = harness.run_worker(
            f"benchmarks.bench_decimate:work_{name}", {**case, "repeat": repeat}
        )
        results[name] = res
        harness.progress(
            f"{name}: {res['best_s']:.3f} s, {res['samples_per_s'] / 1e6:.1f} M samples/s, "
            f"peak RSS {res['peak_rss_mb']:.0f} MiB"
        )

    ours = results.get("ours")
    if ours:
        for name, res in results.items():
            # > 1: the contender takes that many times longer than ours.
            res["time_vs_ours"] = round(
                ours["samples_per_s"] / res["samples_per_s"], 3 if name == "strided" else 2
            )

    print()
    print(f"{'contender':<22}{'best s':>9}{'M samp/s':>10}{'peak RSS MiB':>14}{'× ours':>9}")
    for name, res in results.items():
        print(
            f"{name:<22}{res['best_s']:>9.3f}{res['samples_per_s'] / 1e6:>10.1f}"
            f"{res['peak_rss_mb']:>14.0f}{res.get('time_vs_ours', float('nan')):>9.2f}"
        )
    print(f"import shared_code.dsp: {import_s * 1000:.0f} ms")

    report = {
        "benchmark": "decimate",
        "case": case,
        "import_time_s": {"shared_code.dsp": round(import_s, 4)},
        "machine": harness.machine_info(),
        "single_thread_env": harness.SINGLE_THREAD,
        "results": results,
    }
    harness.write_json(args.out, report)
    harness.progress(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
