"""Staging orphans (shared_code.staging): a killed worker's spools and ``.part`` files are
removed by the next retention and reconcile run; a live writer's are not; nothing outside
``staging/`` is touched. Real directories and real child processes (SIGKILLed mid-write)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared_code import staging
from shared_code.retention import purge
from shared_code.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]

#: The children's heartbeat (s) and the bound the sweeps use in these tests (10 heartbeats,
#: the production ratio of STALE_SECONDS to HEARTBEAT_SECONDS), short so the test runs in
#: seconds with real clocks.
HEARTBEAT = 0.2
STALE = 10 * HEARTBEAT

# A worker in the middle of a stage: it has written part of its output through the atomic
# writer and keeps going slowly, one byte a second into its buffer (so the file's mtime is not
# moved by the writes themselves: only the heartbeat keeps it fresh), like a long decimate.
_WRITER = """
import sys, time
from pathlib import Path
from shared_code import staging
from shared_code.share_layout import atomic_writer
staging.HEARTBEAT_SECONDS = float(sys.argv[2])
with atomic_writer(Path(sys.argv[1]), "decimated/snorre/" + sys.argv[3]) as (tmp, fh):
    fh.write(b"x" * 4096)
    fh.flush()
    print(tmp, flush=True)
    while True:
        fh.write(b"x")
        time.sleep(1.0)
"""

# Outside staging/: young enough that retention keeps them, or never purged (failed/).
_OUTSIDE = (
    "decimated/snorre/a.segy",
    "mseed/snorre/2026/327/a.mseed",
    "state/seams/snorre/abc/1/head.npy",
    "failed/2026-11-01/decimate-x.json",
)


def _writer(share: Path, name: str) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(share), str(HEARTBEAT), name],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    assert child.stdout is not None
    tmp = Path(child.stdout.readline().strip())
    assert tmp.parent == share / "staging" and tmp.name.endswith(".segy.part"), tmp
    return child, tmp


@pytest.fixture
def writers(share: Path) -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def _old(path: Path, seconds: float, *, directory: bool = False) -> None:
    if directory:
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"leftover")
    when = time.time() - seconds
    os.utime(path, (when, when))


def _outside(share: Path) -> None:
    for rel in _OUTSIDE:
        (share / rel).parent.mkdir(parents=True, exist_ok=True)
        (share / rel).write_bytes(b"keep")
    # failed/ is never purged, however old
    old = time.time() - 400 * 86400
    os.utime(share / _OUTSIDE[-1], (old, old))


def _leftovers(share: Path) -> tuple[list[str], list[str]]:
    """A killed worker's staging items (untouched for 10 min) and live ones (touched 10 s
    ago), as the three writers leave them; returns (orphans, live) share-relative."""
    st = share / "staging"
    stale = staging.STALE_SECONDS + 300
    _old(st / "spool-dead" / "raw", stale)
    _old(st / "spool-dead", stale, directory=True)
    _old(st / "decompressed-dead.part", stale)
    _old(st / "0123abcd.segy.part", stale)
    # A live spool: its raw file was downloaded long ago and is only read now, but the
    # directory's heartbeat is recent.
    _old(st / "spool-live" / "raw", stale)
    _old(st / "spool-live", 10, directory=True)
    _old(st / "decompressed-live.part", 10)
    return (
        ["staging/0123abcd.segy.part", "staging/decompressed-dead.part", "staging/spool-dead"],
        ["staging/decompressed-live.part", "staging/spool-live", "staging/spool-live/raw"],
    )


def test_retention_removes_old_leftovers_not_live_items(share: Path) -> None:
    orphans, live = _leftovers(share)
    _outside(share)

    removed = purge(share, 30)

    assert sorted(removed) == orphans
    for rel in orphans:
        assert not (share / rel).exists()
    for rel in (*live, *_OUTSIDE):
        assert (share / rel).exists(), rel


def test_sigkilled_writer_removed_by_retention_live_writer_kept(
    share: Path, writers: list[subprocess.Popen[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "STALE_SECONDS", STALE)
    _outside(share)
    doomed, doomed_tmp = _writer(share, "dead.segy")
    alive, alive_tmp = _writer(share, "alive.segy")
    writers += [doomed, alive]

    # Both live for several bounds: runs meanwhile never take their files.
    deadline = time.monotonic() + 2.5 * STALE
    while time.monotonic() < deadline:
        assert purge(share, 30) == []
        time.sleep(HEARTBEAT)
    assert doomed_tmp.exists() and alive_tmp.exists()

    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL
    assert doomed_tmp.exists()  # killed: the atomic writer's cleanup never ran
    time.sleep(STALE + 2 * HEARTBEAT)

    assert purge(share, 30) == [f"staging/{doomed_tmp.name}"]
    assert not doomed_tmp.exists()
    assert alive.poll() is None and alive_tmp.exists()
    assert not (share / "decimated/snorre/dead.segy").exists()  # nothing partial published
    for rel in _OUTSIDE:
        assert (share / rel).read_bytes() == b"keep", rel


@pytest.mark.azurite
def test_reconcile_run_removes_a_sigkilled_writers_part(
    pipeline_env: dict[str, str],
    share: Path,
    writers: list[subprocess.Popen[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azure.storage.blob import BlobServiceClient

    from shared_code.reconcile import run_reconcile

    settings: Settings = load_settings(pipeline_env)
    assert settings.share_root == share
    assert settings.storage.connection_string
    BlobServiceClient.from_connection_string(settings.storage.connection_string).create_container(
        settings.raw_container
    )
    monkeypatch.setattr(staging, "STALE_SECONDS", STALE)
    orphans, live = _leftovers(share)
    _outside(share)
    doomed, doomed_tmp = _writer(share, "dead.segy")
    alive, alive_tmp = _writer(share, "alive.segy")
    writers += [doomed, alive]
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    time.sleep(STALE + 2 * HEARTBEAT)
    # the live leftovers' fixed mtimes have aged past the short bound meanwhile: refresh them
    # as their writers' heartbeats would
    for rel in live:
        os.utime(share / rel)

    def redrive(_settings: Settings, name: str) -> Any:
        raise AssertionError(f"nothing to re-drive, got {name}")

    report = run_reconcile(settings, redrive)

    assert sorted(report.orphans_removed) == sorted([*orphans, f"staging/{doomed_tmp.name}"])
    assert report.as_dict()["orphans_removed"] == 4
    assert alive.poll() is None and alive_tmp.exists()
    for rel in (*live, *_OUTSIDE):
        assert (share / rel).exists(), rel


def test_decompression_spool_kept_alive_while_read(
    share: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    from shared_code.formats import compression

    monkeypatch.setattr(staging, "HEARTBEAT_SECONDS", HEARTBEAT)
    packed = tmp_path / "raw.gz"
    packed.write_bytes(gzip.compress(b"payload" * 1000))
    with compression.decompressed(packed, "snorre/raw.gz", share / "staging") as (spool, kind):
        assert kind == "gzip" and spool.parent == share / "staging"
        # As if the reader had been busy with it for an hour without writing:
        old = time.time() - 3600
        os.utime(spool, (old, old))
        time.sleep(3 * HEARTBEAT)
        assert time.time() - spool.stat().st_mtime < 2 * HEARTBEAT  # the heartbeat touched it
        assert staging.sweep_orphans(share, stale_seconds=STALE) == []
    assert not spool.exists()
