"""Retention on a real directory tree with real modification times."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from shared_code.retention import purge

DAY = 86400.0


def _file(share: Path, rel: str, age_days: float, now: float) -> Path:
    path = share / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 100)
    mtime = now - age_days * DAY
    os.utime(path, (mtime, mtime))
    return path


def test_removes_only_old_outputs(share: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    now = time.time()
    old = [
        "decimated/snorre/2024/01/01/a.segy",
        "mseed/snorre/2024/01/01/a.mseed",
        "mseed/grane/b.mseed",
    ]
    young = ["decimated/snorre/2024/03/01/c.segy", "mseed/snorre/2024/03/01/c.mseed"]
    untouchable = ["failed/2024-01-01/decimate-x.json"]
    old += ["state/seams/snorre/abc/123/head.npy", "staging/crashed.part"]
    _file(share, "staging/in-flight.part", 60 / 86400, now)  # a live writer touched it 60 s ago
    young += ["staging/in-flight.part", "state/seams/snorre/abc/456/head.npy"]
    for rel in old:
        _file(share, rel, 40, now)
    for rel in young:
        if not (share / rel).exists():
            _file(share, rel, 10, now)
    for rel in untouchable:
        _file(share, rel, 400, now)

    removed = purge(share, 30, now=now)

    assert sorted(removed) == sorted(old)
    for rel in old:
        assert not (share / rel).exists()
    for rel in young + untouchable:
        assert (share / rel).exists()
    # the directories the old files left empty are gone, the tops stay
    assert not (share / "decimated/snorre/2024/01").exists()
    assert not (share / "mseed/grane").exists()
    assert (share / "decimated/snorre/2024/03/01").is_dir()
    assert (share / "decimated").is_dir() and (share / "mseed").is_dir()
    assert "retention removed 1 files (100 bytes)" in caplog.text
    assert "mseed/snorre/2024/01/01" in caplog.text


def test_boundary_and_empty_dir_grace(share: Path) -> None:
    now = time.time()
    _file(share, "mseed/snorre/edge.mseed", 29.9, now)
    fresh_empty = share / "mseed/snorre/just-created"
    fresh_empty.mkdir(parents=True)
    assert purge(share, 30, now=now) == []
    assert fresh_empty.is_dir()  # a writer may be about to rename into it
    # a day later an untouched empty directory goes, with the now-old file
    assert purge(share, 30, now=now + DAY) == ["mseed/snorre/edge.mseed"]
    assert not fresh_empty.exists()


def test_symlinks_are_left_alone(share: Path, tmp_path: Path) -> None:
    now = time.time()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    os.utime(outside, (now - 100 * DAY, now - 100 * DAY))
    link = share / "mseed" / "link.mseed"
    link.symlink_to(outside)
    assert purge(share, 30, now=now) == []
    assert outside.exists() and link.is_symlink()


def test_missing_tops_and_bad_days(tmp_path: Path) -> None:
    assert purge(tmp_path / "nothing-here", 30) == []
    with pytest.raises(ValueError, match="older_than_days"):
        purge(tmp_path, 0)
