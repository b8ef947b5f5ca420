"""One-time move of MiniSEED files from the first share layout to the depth-bounded one.

The first releases wrote ``mseed/<field>/<rest>.mseed``, ``<rest>`` being the blob's mapped
path below its field folder, as deep as the blob name; SeisComP's mseedscan reads only 3
folder levels, so files of blobs in deep folders were never streamed. The layout is now
``mseed/<field>/<YYYY>/<DDD>/<folded rest>.mseed`` (:mod:`shared_code.share_layout`). The
folded name depends on ``<rest>`` only, so each old file's new name is known without its
blob name; the day folder comes from the file's own first record (the start of the data it
holds; the pipeline takes the raw file's first sample, which is the same day except when
decimation's seam joins moved the first output sample across midnight).

Run ``python -m shared_code.mseed_migrate --share /mounts/ccs`` (a dry run: it prints what it
would do) and again with ``--apply``. Run it where the share is mounted read-write (the
function app's mount, or a machine that mounts the share), with convert stopped or idle.
Idempotent: a second run finds nothing to move. A target that exists with the same bytes
(the blob was converted again since) makes the old file a duplicate, removed; one with other
bytes is left alone and reported (exit 1), nothing is overwritten. ``_seams/`` keeps its
place (unchanged between the layouts). An old file whose path already has the new shape
(``<4 digits>/<3 digits>/<name>.mseed``, from a blob named like ``snorre/2024/123/x``) cannot be
told from a new one and stays: mseedscan reads it there too.

mseedscan keys the files it has read on inode and path: a moved file is read again from its
start, so SeedLink clients may receive its records a second time.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared_code.share_layout import MSEED, SEAMS, day_folder, folded_name

#: A path below ``mseed/<field>/`` in the new layout's shape.
_NEW_SHAPE = re.compile(r"\d{4}/\d{3}/[^/]+\.mseed")


@dataclass(frozen=True)
class Move:
    """One old file and what the migration does with it.

    ``action``: ``move`` (to ``target``), ``duplicate`` (``target`` holds the same bytes: the
    old file is removed), ``conflict`` (``target`` holds other bytes: both stay), or
    ``unreadable`` (no MiniSEED record to date it: it stays; ``reason`` says why).
    """

    source: str
    target: str
    action: str
    reason: str = ""


def plan(share_root: Path) -> list[Move]:
    """What migrating ``share_root``'s ``mseed/`` folder would do, file by file (sorted)."""
    moves = []
    for field_dir in sorted(p for p in (share_root / MSEED).iterdir() if p.is_dir()):
        for path in _old_files(field_dir):
            rel = path.relative_to(share_root).as_posix()
            rest = PurePosixPath(path.relative_to(field_dir).as_posix()[: -len(".mseed")])
            try:
                day = day_folder(_first_sample_ns(path))
            except (OSError, ValueError) as exc:
                moves.append(Move(rel, "", "unreadable", f"{type(exc).__name__}: {exc}"))
                continue
            target = f"{MSEED}/{field_dir.name}/{day}/{folded_name(rest)}.mseed"
            full = share_root / target
            if not full.exists():
                moves.append(Move(rel, target, "move"))
            elif filecmp.cmp(path, full, shallow=False):
                moves.append(Move(rel, target, "duplicate"))
            else:
                moves.append(Move(rel, target, "conflict", "the target holds other data"))
    return moves


def _old_files(field_dir: Path) -> Iterator[Path]:
    """MiniSEED files below ``field_dir`` in the old layout's shape (symbolic links skipped)."""
    for dirpath, dirnames, filenames in os.walk(field_dir):
        if Path(dirpath) == field_dir and SEAMS in dirnames:
            dirnames.remove(SEAMS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.endswith(".mseed") or path.is_symlink():
                continue
            if not _NEW_SHAPE.fullmatch(path.relative_to(field_dir).as_posix()):
                yield path


def _first_sample_ns(path: Path) -> int:
    """The earliest record start in a MiniSEED file, ns since 1970 (headers only)."""
    import obspy  # cold start: only the migration needs it
    from obspy.core.util.obspy_types import ObsPyException

    try:
        stream = obspy.read(str(path), format="MSEED", headonly=True)
    except ObsPyException as exc:
        raise ValueError(f"not MiniSEED: {exc}") from None
    if not len(stream):
        raise ValueError("no MiniSEED record")
    return min(int(tr.stats.starttime.ns) for tr in stream)


def apply(share_root: Path, moves: Sequence[Move]) -> None:
    """Carry out ``moves`` (from :func:`plan`): rename or remove, then drop emptied folders."""
    emptied: set[Path] = set()
    for move in moves:
        source = share_root / move.source
        if move.action == "move":
            target = share_root / move.target
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():  # appeared since the plan: never overwrite
                continue
            source.rename(target)  # same share: atomic, keeps the file's mtime
        elif move.action == "duplicate":
            source.unlink()
        else:
            continue
        emptied.add(source.parent)
    for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        _remove_empty_up_to_field(share_root, folder)


def _remove_empty_up_to_field(share_root: Path, folder: Path) -> None:
    """Remove ``folder`` and its parents while empty, stopping at ``mseed/<field>``."""
    stop = len((share_root / MSEED).parts) + 1
    while len(folder.parts) > stop:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): leave it
            return
        folder = folder.parent


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the plan; with ``--apply`` carry it out."""
    parser = argparse.ArgumentParser(
        prog="python -m shared_code.mseed_migrate",
        description="Move MiniSEED files from the first share layout (mseed/<field>/<blob "
        "path>.mseed) to mseed/<field>/<YYYY>/<DDD>/<folded name>.mseed. Dry run unless --apply.",
    )
    parser.add_argument("--share", type=Path, required=True, help="share root (holds mseed/)")
    parser.add_argument("--apply", action="store_true", help="move the files (default: dry run)")
    args = parser.parse_args(argv)
    if not (args.share / MSEED).is_dir():
        print(f"error: {args.share / MSEED} is not a folder", file=sys.stderr)
        return 2
    moves = plan(args.share)
    for move in moves:
        if move.action in ("move", "duplicate"):
            print(f"{move.action}: {move.source} -> {move.target}")
        else:
            print(f"{move.action}: {move.source}: {move.reason}", file=sys.stderr)
    counts = {a: sum(m.action == a for m in moves) for a in ("move", "duplicate", "conflict")}
    unreadable = sum(m.action == "unreadable" for m in moves)
    summary = (
        f"{counts['move']} to move, {counts['duplicate']} duplicates to remove, "
        f"{counts['conflict']} conflicts and {unreadable} unreadable files left in place"
    )
    if args.apply:
        apply(args.share, moves)
        print(f"applied: {summary}")
    else:
        print(f"dry run, nothing changed: {summary}; run again with --apply")
    return 1 if counts["conflict"] or unreadable else 0


if __name__ == "__main__":
    raise SystemExit(main())
