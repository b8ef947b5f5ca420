"""The share's ``staging/`` area: live writers keep their items fresh; stale items are orphans.

Everything under ``staging/`` lives for one invocation: atomic writes' ``*.part``
(:func:`shared_code.share_layout.atomic_writer`), blob spools ``spool-*/``
(:mod:`shared_code.pipeline`), decompression spools ``decompressed-*.part``
(:mod:`shared_code.formats.compression`), health probes. A worker killed mid-file (SIGKILL,
host timeout, instance recycled) leaves its item behind; reconcile and retention remove it
with :func:`sweep_orphans`.

How "live" is known, with nothing shared but the share: an item's age since its last
modification. Every writer holds its item in :func:`keep_alive` while it works, which
touches the item every :data:`HEARTBEAT_SECONDS` from a background thread, whatever the
writer is doing (downloading, decimating for minutes without writing, waiting on storage).
An item (a top-level entry of ``staging/``; a directory counts by the newest modification of
anything inside it) untouched for :data:`STALE_SECONDS` has missed ten heartbeats, so its
writer is dead: a killed process takes its heartbeat thread with it. Why not a lock file with
pid/host and a lease: a pid says nothing across instances (each sees only its own processes),
so the lease would still be the only test, and it would be one more file to write and to
orphan; the item's own mtime is that lease without the extra file. Why not the writers'
natural activity alone: the atomic writer's early writeback touches its file only every
8 MiB, and a decimate can read a spool for minutes without modifying it; the bound would
then have to be the function timeout or longer, and the CLI has no timeout at all.

The bound's margin covers a heartbeat thread starved by a long call that holds the GIL
(numpy and the readers release it in bulk work; no single call runs for minutes) and clock
skew between instances (NTP-synced, seconds), since the mtime is written by one instance's
clock and compared with another's.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

#: The share's folder for temporary items (also :data:`shared_code.share_layout.STAGING`).
STAGING = "staging"

#: Seconds between a live writer's touches of its staging item.
HEARTBEAT_SECONDS = 30.0

#: Seconds without a touch after which a staging item is an orphan (ten missed heartbeats).
STALE_SECONDS = 10 * HEARTBEAT_SECONDS


@contextmanager
def keep_alive(path: Path, interval: float | None = None) -> Iterator[None]:
    """Touch ``path`` (file or directory) every ``interval`` seconds (default:
    :data:`HEARTBEAT_SECONDS` as it is when called) while the block runs, so that
    :func:`sweep_orphans` never takes it for a dead worker's leftover."""
    period = HEARTBEAT_SECONDS if interval is None else interval
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            try:
                os.utime(path)
            except FileNotFoundError:
                return  # the writer renamed or removed it: nothing left to keep alive
            except OSError as exc:  # share briefly unavailable: the next beat tries again
                log.warning("staging heartbeat could not touch %s: %s", path, exc)

    thread = threading.Thread(target=beat, name=f"staging-heartbeat-{path.name}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def last_touched(entry: Path) -> float:
    """Newest modification time (epoch s) of ``entry`` and, for a directory, of anything in
    it (symbolic links inside by their own time, never followed)."""
    newest = entry.lstat().st_mtime
    if entry.is_dir():
        for dirpath, dirnames, filenames in os.walk(entry):
            for name in (*dirnames, *filenames):
                try:
                    newest = max(newest, (Path(dirpath) / name).lstat().st_mtime)
                except FileNotFoundError:
                    continue
    return newest


def sweep_orphans(
    share_root: Path, now: float | None = None, stale_seconds: float | None = None
) -> list[str]:
    """Remove the top-level entries of ``<share_root>/staging/`` not touched for
    ``stale_seconds`` (s; default :data:`STALE_SECONDS`) before ``now`` (epoch s; default:
    now). Returns their share-relative
    POSIX paths. Nothing outside ``staging/`` is looked at; symbolic links are neither
    followed nor removed (no writer makes them). An entry that vanishes or cannot be removed
    is skipped."""
    now_s = time.time() if now is None else float(now)
    stale_s = STALE_SECONDS if stale_seconds is None else stale_seconds
    staging = Path(share_root) / STAGING
    if not staging.is_dir() or staging.is_symlink():
        return []
    removed: list[str] = []
    for entry in sorted(staging.iterdir()):
        try:
            if entry.is_symlink() or now_s - last_touched(entry) < stale_s:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove staging orphan %s: %s", entry, exc)
            continue
        removed.append(f"{STAGING}/{entry.name}")
    if removed:
        log.info("removed %d staging orphans untouched for %s s", len(removed), stale_s)
    return removed
