"""Faults of the resources around a file, on Azurite and a real share directory.

- A blob deleted before decimate read it ends as ``deleted`` ("source deleted"), whether the
  conditional read answers 412 (Azurite) or 404 (Azure may), and is not retried; an
  overwritten one still ends as ``superseded``.
- A share that is full (ENOSPC) or read-only (EROFS) cannot stop the ledger from recording the
  failure: the row is ``failed`` with the reason and the event, ``status`` shows it, Event Grid
  retries (the error is transient), and once the share recovers a retry or ``cli replay
  --failed`` converts the file. The errors are injected at the OS boundary only (open / mkdir
  of paths under the share), so every layer above runs as in production.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scripts.local_host import deliver_event
from scripts.sample_data import array_record, write_segy
from shared_code.cli import main as cli_main
from shared_code.ledger import Ledger
from shared_code.settings import get_settings
from tests.share_helpers import mseed_file

BLOB = "snorre/2026/11/23/fault.sgy"


@pytest.fixture(scope="module")
def segy(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("fault") / "a.sgy"
    return write_segy(path, array_record(n_stations=2, seconds=4.0), 1000.0).read_bytes()


def _row(etag: str) -> dict[str, Any]:
    row = Ledger.from_settings(get_settings()).get("snorre", BLOB, etag)
    assert row is not None
    return row


def _status(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, int]]:
    capsys.readouterr()
    assert cli_main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- deleted / overwritten before the read ---------------------------------------------------


def test_blob_deleted_before_read_is_source_deleted(pipeline, segy, capsys) -> None:
    props = pipeline.upload(BLOB, segy)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    pipeline.container.delete_blob(BLOB)
    deliver_event(event)  # no exception: Event Grid must not retry a file that is gone
    row = _row(props["etag"])
    assert row["state"] == "deleted"
    assert "source deleted before it was read" in row["reason"]
    assert _status(capsys) == {"snorre": {"deleted": 1}}
    deliver_event(event)  # a redelivery changes nothing
    assert _row(props["etag"])["attempts"] == 1
    assert not pipeline.failures() and not list((pipeline.share / "mseed").rglob("*.mseed"))


def test_blob_overwritten_before_read_is_superseded(pipeline, segy) -> None:
    props = pipeline.upload(BLOB, segy)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    pipeline.upload(BLOB, segy + b"\0")  # a new version, with its own event
    deliver_event(event)
    row = _row(props["etag"])
    assert row["state"] == "superseded" and "newer version" in row["reason"]


def _answer_404(monkeypatch: pytest.MonkeyPatch) -> None:
    """The conditional read answers 404, as Azure may for a deleted blob (Azurite: 412).

    Only the download is replaced; the property check after it goes to Azurite."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobClient

    def download_blob(self: BlobClient, *args: Any, **kwargs: Any) -> Any:
        raise ResourceNotFoundError("The specified blob does not exist. ErrorCode:BlobNotFound")

    monkeypatch.setattr(BlobClient, "download_blob", download_blob)


def test_404_on_a_deleted_blob_is_source_deleted(pipeline, segy, monkeypatch) -> None:
    props = pipeline.upload(BLOB, segy)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    pipeline.container.delete_blob(BLOB)
    _answer_404(monkeypatch)
    deliver_event(event)  # permanent: no 24-hour retry storm
    assert _row(props["etag"])["state"] == "deleted"
    assert not pipeline.failures()


def test_404_on_a_replaced_blob_is_superseded(pipeline, segy, monkeypatch) -> None:
    props = pipeline.upload(BLOB, segy)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    pipeline.upload(BLOB, segy + b"\0")
    _answer_404(monkeypatch)
    deliver_event(event)
    assert _row(props["etag"])["state"] == "superseded"


def test_404_while_the_version_is_still_there_stays_transient(pipeline, segy, monkeypatch):
    # The blob is unchanged, so a 404 says nothing about its fate: retried, not written off.
    from azure.core.exceptions import ResourceNotFoundError

    props = pipeline.upload(BLOB, segy)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    _answer_404(monkeypatch)
    with pytest.raises(ResourceNotFoundError):
        deliver_event(event)
    row = _row(props["etag"])
    assert row["state"] == "failed" and row["permanent"] is False


# -- a full or read-only share -----------------------------------------------------------------


@contextmanager
def share_refuses(monkeypatch: pytest.MonkeyPatch, share: Path, code: int) -> Iterator[None]:
    """Every create or write under ``share`` fails with ``code`` (ENOSPC, EROFS), as the kernel
    answers open(2) and mkdir(2) on a full or read-only file system; reads still work."""
    root = os.path.realpath(share) + os.sep

    def under(path: Any) -> bool:
        if isinstance(path, int):  # an open file descriptor: not a path to judge
            return False
        return os.path.realpath(os.fspath(path)).startswith(root)

    def refuse(path: Any) -> OSError:
        return OSError(code, os.strerror(code), os.fspath(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if under(file) and any(flag in mode for flag in "wax+"):
            raise refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if under(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if under(path):
            if os.path.exists(path):  # mkdir(2) answers EEXIST first, even when full or RO
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
            raise refuse(path)
        real_mkdir(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", fake_open)
        patch.setattr(io, "open", fake_open)
        patch.setattr(os, "open", fake_os_open)
        patch.setattr(os, "mkdir", fake_mkdir)
        yield


def _visible_files(share: Path) -> list[Path]:
    return [p for p in (share / "mseed").rglob("*") if p.is_file()]


def _recover_by_event_grid_retry(event: dict[str, Any]) -> None:
    deliver_event(event)


def _recover_by_replay(event: dict[str, Any]) -> None:
    assert cli_main(["replay", "--field", "snorre", "--failed"]) == 0


@pytest.mark.parametrize(
    "fault",
    [(errno.ENOSPC, _recover_by_event_grid_retry), (errno.EROFS, _recover_by_replay)],
    ids=["ENOSPC-then-eventgrid-retry", "EROFS-then-cli-replay-failed"],
)
def test_share_refusing_writes_is_recorded_in_the_ledger(
    pipeline, segy, monkeypatch, capsys, fault: tuple[int, Callable[[dict[str, Any]], None]]
) -> None:
    code, recover = fault
    props = pipeline.upload(BLOB, segy)
    event = pipeline.event(BLOB, props["etag"], props["size"])
    pipeline.share.joinpath("mseed").mkdir(parents=True, exist_ok=True)
    with share_refuses(monkeypatch, pipeline.share, code):
        for _delivery in range(2):  # Event Grid's first delivery and its retry 10 s later
            with pytest.raises(OSError) as raised:  # transient: Event Grid must retry
                deliver_event(event)
            assert raised.value.errno == code
    row = _row(props["etag"])
    assert row["state"] == "failed" and row["stage"] == "decimate"
    assert os.strerror(code) in row["reason"]
    assert "failure record not written to the share" in row["reason"]
    assert row["permanent"] is False and row["failure_path"] == ""
    # The retry was not acknowledged as a duplicate of a running claim: it worked on the file.
    assert row["attempts"] == 2
    stored = json.loads(row["event"])  # replayable from the row alone
    assert [stored[k] for k in ("id", "subject", "data")] == [
        event[k] for k in ("id", "subject", "data")
    ]
    assert not pipeline.failures()  # the share took nothing ...
    assert not _visible_files(pipeline.share)  # ... and shows nothing partial
    assert not list(pipeline.share.rglob("*.part"))
    assert _status(capsys) == {"snorre": {"failed": 1}}

    recover(event)  # the share is back
    drained = pipeline.drain()
    assert drained.processed == 1 and not drained.poisoned, drained.errors
    assert _row(props["etag"])["state"] == "converted"
    assert mseed_file(pipeline.share, BLOB).stat().st_size > 0
    assert _status(capsys) == {"snorre": {"converted": 1}}
