"""The bounded-memory claim: a ~4 GB SEG-Y decimates with peak RSS ≤ 512 MB, download included.

Builds a synthetic SEG-Y (default 8000 traces × 120 s × 1000 Hz int32 ≈ 3.84 GB; sizes as
options) in chunks with bounded memory (120 000 samples per trace needs SEG-Y rev 2's extended
sample count: see ``bench_pipeline.write_synthetic_segy``), then measures the peak RSS of a
fresh process (its own ``ru_maxrss``) for:

``cli``
    ``python -m shared_code.cli process --field snorre --output DIR FILE`` (snorre's 250 Hz:
    30 000 output samples per trace, within the decimated SEG-Y writer's 32 767).
``functions``
    the Functions path on Azurite: the parent uploads the file to container ``raw`` (streamed
    from disk, ``max_concurrency=1``; the uploader is not measured), then the measured child
    sets the pipeline's settings, creates the ``convert`` (+ ``-poison``) queue and the ledger
    table, delivers the BlobCreated event with ``scripts.local_host.deliver_event`` (blob
    download to a spool file, decimate, enqueue) and drains the queue with
    ``scripts.local_host.drain_queue`` (convert): all of it inside the measured process.
``download``
    (diagnostic) ``shared_code.storage.download_blob`` alone in a fresh process: what the
    download costs by itself.

The ``functions`` and ``download`` children also sample their RSS every 50 ms in a thread to
tell which phase reaches the peak. Prints each peak RSS against the bound, wall times, and
writes ``benchmarks/results/memory.json``. The big files are deleted at the end (``--keep``
keeps them).

    .venv/bin/python -m benchmarks.bench_memory [--traces 8000 --seconds 120 --rate 1000
        --dtype int32 --field snorre --bound-mb 512 --skip cli functions download --keep]

Quick run: ``--traces 2000``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import harness
from benchmarks.bench_pipeline import write_synthetic_segy

CONTENDERS = ["cli", "functions", "download"]
RAW = "raw"
QUEUE = "convert"
TABLE = "ledger"


class RssSampler:
    """Samples this process's RSS every ``interval`` s in a daemon thread; peak per phase."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = harness.current_rss_mb()
            if rss > self.peaks.get(self.phase, 0.0):
                self.peaks[self.phase] = rss
            self._stop.wait(self.interval)

    @contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def mark(self, phase: str) -> None:
        """Start attributing samples to ``phase``."""
        self.phase = phase

    def report(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in self.peaks.items()}


def _set_env(env: dict[str, str]) -> None:
    import os

    os.environ.update(env)
    from shared_code.settings import get_settings

    get_settings.cache_clear()


def work_functions(*, env: dict[str, str], blob: str, etag: str, size: int) -> dict[str, Any]:
    """The measured child of the Functions path: event in, MiniSEED out, all in this process."""
    sampler = RssSampler()
    with sampler.running():
        t0 = time.perf_counter()
        _set_env(env)
        from azure.storage.queue import QueueClient

        from scripts.local_host import deliver_event, drain_queue
        from shared_code.events import make_event_grid_event
        from shared_code.ledger import Ledger
        from shared_code.settings import get_settings
        from shared_code.storage import blob_service

        settings = get_settings()
        conn = env["PIPELINE_STORAGE"]
        queue = QueueClient.from_connection_string(conn, QUEUE)  # no decode: as the host
        poison = QueueClient.from_connection_string(conn, QUEUE + "-poison")
        for q in (queue, poison):
            try:
                q.create_queue()
            except Exception as exc:  # already there (a re-run on a kept Azurite)
                harness.progress(f"  queue {q.queue_name}: {type(exc).__name__}")
        Ledger.from_settings(settings).ensure_table()
        event = make_event_grid_event(
            account_url=blob_service(settings.storage).url,
            container=RAW,
            blob_name=blob,
            etag=etag,
            content_length=size,
        )
        t1 = time.perf_counter()
        sampler.mark("deliver (download + decimate + enqueue)")
        harness.progress("  functions: delivering the BlobCreated event …")
        deliver_event(event)
        t2 = time.perf_counter()
        harness.progress(f"  functions: decimate done in {t2 - t1:.1f} s; draining the queue …")
        sampler.mark("drain (convert)")
        drained = drain_queue(queue, poison)
        t3 = time.perf_counter()
        sampler.mark("end")
    share = Path(env["SHARE_ROOT"])
    outputs = sorted(str(p.relative_to(share)) for p in (share / "mseed").rglob("*.mseed"))
    failed = sorted(str(p.relative_to(share)) for p in (share / "failed").rglob("*.json"))
    return {
        "name": "functions",
        "setup_s": round(t1 - t0, 3),
        "deliver_s": round(t2 - t1, 3),
        "drain_s": round(t3 - t2, 3),
        "wall_s": round(t3 - t1, 3),
        "processed": drained.processed,
        "poisoned": len(drained.poisoned),
        "errors": drained.errors[:5],
        "mseed_outputs": outputs,
        "mseed_bytes": sum((share / p).stat().st_size for p in outputs),
        "failures": failed,
        "rss_peak_by_phase_mb": sampler.report(),
    }


def work_download(*, env: dict[str, str], blob: str, etag: str, dest: str) -> dict[str, Any]:
    """Diagnostic: ``download_blob`` alone (ranged reads to a local file), in a fresh process."""
    sampler = RssSampler()
    with sampler.running():
        _set_env(env)
        from shared_code.settings import get_settings
        from shared_code.storage import download_blob

        settings = get_settings()
        sampler.mark("download")
        t0 = time.perf_counter()
        size = download_blob(settings, RAW, blob, etag, Path(dest))
        wall = time.perf_counter() - t0
    Path(dest).unlink(missing_ok=True)
    return {
        "name": "download",
        "wall_s": round(wall, 3),
        "bytes": size,
        "mb_per_s": round(size / 1e6 / wall, 1),
        "rss_peak_by_phase_mb": sampler.report(),
    }


def upload(conn: str, path: Path, blob: str) -> dict[str, Any]:
    """Stream the file to ``raw/<blob>`` from disk (max_concurrency=1); its ETag and size."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(conn)
    container = service.get_container_client(RAW)
    if not container.exists():
        container.create_container()
    size = path.stat().st_size
    started = time.perf_counter()
    last = [0.0]

    def hook(current: int, total: int | None) -> None:
        now = time.perf_counter()
        if now - last[0] > 3.0 or current == size:
            last[0] = now
            harness.progress(
                f"  upload: {current / 1e9:.2f}/{size / 1e9:.2f} GB, "
                f"{current / 1e6 / max(now - started, 1e-9):.0f} MB/s"
            )

    with open(path, "rb") as fh:
        client = container.upload_blob(
            blob, fh, length=size, overwrite=True, max_concurrency=1, progress_hook=hook
        )
    props = client.get_blob_properties()
    return {
        "etag": str(props.etag),
        "size": int(props.size),
        "seconds": round(time.perf_counter() - started, 2),
        "peak_rss_uploader_mb": round(harness.peak_rss_mb(), 1),
    }


def _verdict(res: dict[str, Any], bound: float) -> str:
    return "OK" if float(res["peak_rss_mb"]) <= bound else "OVER"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--traces", type=int, default=8000)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--rate", type=float, default=1000.0, help="input rate, Hz")
    ap.add_argument("--dtype", choices=["int32", "float32"], default="int32")
    ap.add_argument("--field", default="snorre", help="field of config/fields.toml (its rate)")
    ap.add_argument("--bound-mb", type=float, default=512.0, help="the claimed peak RSS bound")
    ap.add_argument("--skip", nargs="*", default=[], choices=CONTENDERS)
    ap.add_argument("--workdir", type=Path, default=None, help="where the big files go")
    ap.add_argument("--keep", action="store_true", help="keep the input, Azurite data, outputs")
    ap.add_argument("--out", type=Path, default=harness.RESULTS / "memory.json")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=args.workdir))
    try:
        return _run(args, work)
    finally:
        if args.keep:
            harness.progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            harness.progress(f"removed {work}")


def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from shared_code.fields import load_fields

    fields_config = harness.ROOT / "config" / "fields.toml"
    cfg = load_fields(fields_config).get(args.field)
    n = round(args.seconds * args.rate)
    case = {
        "traces": args.traces,
        "seconds": args.seconds,
        "rate": args.rate,
        "dtype": args.dtype,
        "field": args.field,
        "target_rate_hz": cfg.target_rate_hz,
        "output_samples_per_trace": round(n * cfg.target_rate_hz / args.rate),
        "bound_mb": args.bound_mb,
    }
    harness.progress(
        f"case: {args.traces} traces × {args.seconds:g} s × {args.rate:g} Hz {args.dtype} "
        f"({args.traces * n * 4 / 1e9:.2f} GB of samples) → field {args.field} at "
        f"{cfg.target_rate_hz:g} Hz; bound {args.bound_mb:g} MB"
    )
    path = work / "big.sgy"
    harness.progress(f"building {path}")
    built = write_synthetic_segy(
        path, channels=args.traces, samples=n, rate_hz=args.rate, dtype=args.dtype
    )
    built["builder_peak_rss_mb"] = round(harness.peak_rss_mb(), 1)
    harness.progress(
        f"  {built['bytes'] / 1e9:.2f} GB in {built['seconds']:.0f} s ({built['writer']}), "
        f"builder peak RSS {built['builder_peak_rss_mb']:.0f} MiB"
    )

    results: dict[str, dict[str, Any]] = {}
    if "cli" not in args.skip:
        harness.progress("cli: python -m shared_code.cli process … (measured)")
        out_dir = work / "share-cli"
        cmd = [
            sys.executable, "-m", "shared_code.cli", "process", "--field", args.field,
            "--output", str(out_dir), str(path),
        ]  # fmt: skip
        res = harness.run_command(cmd)
        res["name"] = "cli"
        res["mseed_bytes"] = sum(p.stat().st_size for p in (out_dir / "mseed").rglob("*.mseed"))
        res["decimated_bytes"] = sum(
            p.stat().st_size for p in (out_dir / "decimated").rglob("*") if p.is_file()
        )
        results["cli"] = res
        harness.progress(
            f"  cli: exit {res['returncode']}, {res['wall_s']:.1f} s, peak RSS "
            f"{res['peak_rss_mb']:.0f} MiB ({_verdict(res, args.bound_mb)}); "
            f"{res['stdout_tail'].strip()[-300:]}"
        )
        shutil.rmtree(out_dir, ignore_errors=True)

    if {"functions", "download"} - set(args.skip):
        results.update(_functions_path(args, work, path, case))

    print()
    print(f"{'contender':<11}{'wall s':>9}{'peak RSS MiB':>14}{'bound MiB':>11}{'':>6}")
    for name, res in results.items():
        print(
            f"{name:<11}{res['wall_s']:>9.1f}{res['peak_rss_mb']:>14.0f}{args.bound_mb:>11.0f}"
            f"{_verdict(res, args.bound_mb):>6}"
        )
        if "rss_peak_by_phase_mb" in res:
            print(f"{'':<11}sampled peak by phase: {res['rss_peak_by_phase_mb']}")
    report = {
        "benchmark": "memory",
        "case": case,
        "input": built,
        "machine": harness.machine_info(),
        "single_thread_env": harness.SINGLE_THREAD,
        "results": results,
        "notes": [
            "peak_rss_mb is the child's own ru_maxrss (os.wait4 / getrusage in the child)",
            "functions: the upload runs in the parent and is not measured",
            "rss_peak_by_phase_mb: /proc/self/statm sampled every 50 ms (may miss short peaks)",
        ],
    }
    harness.write_json(args.out, report)
    harness.progress(f"wrote {args.out}")
    return report


def _functions_path(
    args: argparse.Namespace, work: Path, path: Path, case: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    from scripts import azurite

    results: dict[str, dict[str, Any]] = {}
    blob = f"{args.field}/2026/11/23/bench_{path.stem}.sgy"
    harness.progress("starting Azurite")
    with azurite.running(work / "azurite") as az:
        conn = az.connection_string
        harness.progress(f"uploading {path.name} to {RAW}/{blob} (streamed, max_concurrency=1)")
        up = upload(conn, path, blob)
        case["upload"] = up
        harness.progress(f"  uploaded in {up['seconds']:.0f} s, uploader peak RSS "
                         f"{up['peak_rss_uploader_mb']:.0f} MiB")  # fmt: skip
        share = work / "share-functions"
        spool = work / "spool"
        spool.mkdir(exist_ok=True)
        env = {
            "PIPELINE_STORAGE": conn,
            "AzureWebJobsStorage": conn,
            "RAW_CONTAINER": RAW,
            "CONVERT_QUEUE": QUEUE,
            "LEDGER_TABLE": TABLE,
            "SHARE_ROOT": str(share),
            "FIELDS_CONFIG": str(harness.ROOT / "config" / "fields.toml"),
            "TMPDIR": str(spool),  # the download's spool file: on the big disk
        }
        if "download" not in args.skip:
            harness.progress("download: download_blob alone (diagnostic, measured)")
            res = harness.run_worker(
                "benchmarks.bench_memory:work_download",
                {"env": env, "blob": blob, "etag": up["etag"], "dest": str(spool / "dl.raw")},
                env={"TMPDIR": str(spool)},
            )
            results["download"] = res
            harness.progress(f"  download: {res['wall_s']:.1f} s ({res['mb_per_s']:.0f} MB/s), "
                             f"peak RSS {res['peak_rss_mb']:.0f} MiB")  # fmt: skip
        if "functions" not in args.skip:
            harness.progress("functions: deliver_event + drain_queue in one process (measured)")
            res = harness.run_worker(
                "benchmarks.bench_memory:work_functions",
                {"env": env, "blob": blob, "etag": up["etag"], "size": up["size"]},
                env={"TMPDIR": str(spool)},
            )
            results["functions"] = res
            ok = res["processed"] == 1 and res["mseed_outputs"] and not res["failures"]
            harness.progress(
                f"  functions: {'ok' if ok else 'NOT OK'}, deliver {res['deliver_s']:.1f} s + "
                f"drain {res['drain_s']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MiB "
                f"({_verdict(res, args.bound_mb)}); failures: {res['failures']}"
            )
    return results


if __name__ == "__main__":
    main()
