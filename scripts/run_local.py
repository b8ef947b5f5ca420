"""Run the whole pipeline locally on sample data: Azurite, real events, real queue, real files.

Starts the pinned Azurite, creates the raw container and the convert queue, uploads the sample
raw files, delivers real-schema BlobCreated events (one in the Event Grid schema, one in the
CloudEvents schema) to ``decimate``, drains the convert queue through ``convert``, prints a
per-file summary and writes a PNG of one channel before and after decimation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / "local",
        help="where the share, Azurite's data and the samples go (wiped)",
    )
    args = parser.parse_args()
    work: Path = args.workdir.resolve()
    for sub in ("share", "azurite", "samples"):
        shutil.rmtree(work / sub, ignore_errors=True)

    from scripts import azurite
    from scripts.sample_data import make_samples

    step("making sample raw files")
    samples = make_samples(work / "samples")
    step("starting Azurite")
    with azurite.running(work / "azurite") as az:
        os.environ.update({
            "PIPELINE_STORAGE": az.connection_string,
            "AzureWebJobsStorage": az.connection_string,
            "SHARE_ROOT": str(work / "share"),
            "RAW_CONTAINER": "raw",
            "CONVERT_QUEUE": "convert",
            "LEDGER_TABLE": "ledger",
        })  # fmt: skip
        return run(samples, work)


def run(samples: dict[str, Path], work: Path) -> int:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient

    from scripts.local_host import deliver_event, drain_queue
    from scripts.report import joins, plot_before_after, summarize
    from shared_code.events import make_event_grid_event, to_cloud_event
    from shared_code.settings import get_settings
    from shared_code.share_layout import ensure_layout

    settings = get_settings()
    conn = settings.storage.connection_string or ""
    ensure_layout(settings.share_root)
    blobs = BlobServiceClient.from_connection_string(conn)
    container = blobs.create_container(settings.raw_container)
    raw_queue = QueueClient.from_connection_string(conn, settings.convert_queue)
    raw_queue.create_queue()
    poison = QueueClient.from_connection_string(conn, f"{settings.convert_queue}-poison")
    poison.create_queue()

    started = time.perf_counter()
    for n, (blob_name, path) in enumerate(samples.items()):
        step(f"uploading {blob_name} ({path.stat().st_size / 1e6:.1f} MB)")
        with open(path, "rb") as fh:
            client = container.upload_blob(blob_name, fh, overwrite=True)
        event = make_event_grid_event(
            account_url=blobs.url, container=settings.raw_container, blob_name=blob_name,
            etag=str(client.get_blob_properties().etag), content_length=path.stat().st_size,
        )  # fmt: skip
        schema = "Event Grid" if n % 2 == 0 else "CloudEvents 1.0"
        step(f"delivering BlobCreated ({schema} schema) to decimate")
        deliver_event(event if n % 2 == 0 else to_cloud_event(event))
    step("draining the convert queue through convert")
    drained = drain_queue(raw_queue, poison)
    elapsed = time.perf_counter() - started
    print(f"    {drained.processed} converted, {len(drained.poisoned)} poisoned", flush=True)
    for error in drained.errors:
        print(f"    error: {error}", flush=True)

    step("flushing the record's two open ends (what the seams timer does after SEAM_TIMEOUT)")
    from shared_code.fields import load_fields
    from shared_code.seam_sweep import sweep

    swept = sweep(settings.share_root, load_fields(settings.fields_config), 0, now=time.time() + 60)
    print(f"    {len(swept)} seam half(s) emitted at the record's ends", flush=True)

    step("summary")
    ok = summarize(settings.share_root, list(samples), sys.stdout)
    ok = joins(settings.share_root, sys.stdout) and ok
    figure = work / "before_after.png"
    first_blob, first_path = next(iter(samples.items()))
    plot_before_after(first_path, settings.share_root, first_blob, figure)
    print(f"    pipeline time {elapsed:.1f} s; figure: {figure}", flush=True)
    return 0 if ok and not drained.poisoned else 1


if __name__ == "__main__":
    sys.exit(main())
