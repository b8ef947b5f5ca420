"""Retention: delete old decimated and MiniSEED files, and their seam state, from the share.

``decimated/``, ``mseed/`` and ``state/`` (seam edges and claims, useless once the files
they join are gone) lose files older than RETENTION_DAYS; ``staging/`` loses the leftovers of
killed workers (items no live writer touched for :data:`shared_code.staging.STALE_SECONDS`,
see :func:`shared_code.staging.sweep_orphans`). Never ``failed/`` (an
operator's replay queue), and never raw blobs (the pipeline never deletes or modifies those).
A file's age is its modification time, i.e. when the pipeline wrote it onto the share.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from shared_code import telemetry
from shared_code.share_layout import DECIMATED, MSEED, STATE
from shared_code.staging import STAGING, sweep_orphans

log = logging.getLogger(__name__)

#: The top-level share folders retention deletes old files from (besides staging/'s orphans).
PURGED_TOPS = (DECIMATED, MSEED, STATE)

#: Seconds an empty directory must be left alone before removal, unless this run emptied it:
#: a writer may have just created it and be about to rename its file in.
EMPTY_DIR_GRACE_SECONDS = 3600.0


def purge(
    share_root: Path, older_than_days: float, now: float | datetime | None = None
) -> list[str]:
    """Delete files under ``decimated/``, ``mseed/`` and ``state/`` last modified more than
    ``older_than_days`` days before ``now`` (epoch seconds or datetime; default: now), and the
    directories that leaves empty; and the orphans in ``staging/`` (:func:`sweep_orphans`).
    Returns the removed files' (and staging items') share-relative POSIX paths.

    Symbolic links are neither followed nor removed. A file that vanishes or cannot be removed
    is logged and skipped, so one bad file does not stop the run.
    """
    if older_than_days <= 0:
        raise ValueError(f"older_than_days={older_than_days}: must be greater than 0")
    if now is None:
        now_s = time.time()
    elif isinstance(now, datetime):
        now_s = now.timestamp()
    else:
        now_s = float(now)
    root = Path(share_root)
    removed = sweep_orphans(root, now_s)
    if removed:
        telemetry.track_metric(telemetry.RETENTION_FILES_REMOVED, len(removed), top=STAGING)
    for top in PURGED_TOPS:
        cutoff = now_s - older_than_days * 86400.0
        top_dir = root / top
        if not top_dir.is_dir() or top_dir.is_symlink():
            continue
        per_dir: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # dir -> [files, bytes]
        emptied: set[str] = set()
        # Bottom-up, so a directory is looked at after its children were purged.
        for dirpath, _dirnames, filenames in os.walk(top_dir, topdown=False):
            for name in filenames:
                path = Path(dirpath) / name
                try:
                    st = path.lstat()
                    if path.is_symlink() or st.st_mtime >= cutoff:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    log.warning("retention could not remove %s: %s", path, exc)
                    continue
                rel = path.relative_to(root).as_posix()
                removed.append(rel)
                stats = per_dir[Path(rel).parent.as_posix()]
                stats[0] += 1
                stats[1] += st.st_size
                emptied.add(dirpath)
            if Path(dirpath) != top_dir:
                _remove_if_empty(Path(dirpath), dirpath in emptied, now_s, emptied)
        for directory, (count, size) in sorted(per_dir.items()):
            log.info(
                "retention removed %d files (%d bytes) older than %s days from %s",
                count, size, older_than_days, directory,
            )  # fmt: skip
        total = sum(count for count, _ in per_dir.values())
        if total:
            telemetry.track_metric(telemetry.RETENTION_FILES_REMOVED, total, top=top)
    if not removed:
        log.info("retention: nothing older than %s days under %s", older_than_days, PURGED_TOPS)
    return removed


def _remove_if_empty(directory: Path, we_emptied: bool, now_s: float, emptied: set[str]) -> None:
    try:
        if any(directory.iterdir()):
            return
        if not we_emptied and now_s - directory.stat().st_mtime < EMPTY_DIR_GRACE_SECONDS:
            return
        directory.rmdir()
    except OSError:  # not empty after all (a writer got in), or gone: leave it
        return
    # Its parent just lost a child: treat it as emptied by us too.
    emptied.add(str(directory.parent))
