"""Failure records: one JSON per failed file and stage, on the share, replayable.

A record holds what an operator needs to understand and replay the failure: the stage, the
reason, the source blob, and the original event (decimate) or queue message (convert). The
same blob version failing again at the same stage overwrites its record, with ``attempts``
counting up, so a retry loop cannot fill the share.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared_code.etags import canonical_etag
from shared_code.share_layout import FAILED, blob_key, failure_path, resolve, write_atomic

log = logging.getLogger(__name__)


def record_failure(
    share_root: Path,
    *,
    stage: str,
    reason: str,
    blob: str,
    etag: str = "",
    field: str = "",
    event: dict[str, Any] | None = None,
    message: str | None = None,
    permanent: bool = True,
    now: datetime | None = None,
) -> str:
    """Write (or update) the failure record; returns its share-relative path."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    etag = canonical_etag(etag)
    key = blob_key(blob, etag, message or "")
    relative = failure_path(when.strftime("%Y-%m-%d"), stage, key)
    attempts = 1
    existing = resolve(share_root, relative)
    if existing.exists():
        try:
            attempts = int(json.loads(existing.read_text()).get("attempts", 0)) + 1
        except (ValueError, OSError):
            attempts = 1
    record = {
        "stage": stage,
        "reason": reason,
        "permanent": permanent,
        "blob": blob,
        "etag": etag,
        "field": field,
        "time": when.isoformat(),
        "attempts": attempts,
        "event": event,
        "message": message,
        "replay": f"python -m shared_code.cli replay --record {relative}",
    }
    write_atomic(share_root, relative, json.dumps(record, indent=2, default=str).encode())
    log.error("failure recorded at %s: %s", relative, reason)
    return relative


def list_failures(share_root: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every failure record on the share as (share-relative path, record), oldest day first."""
    out = []
    base = share_root / FAILED
    for path in sorted(base.glob("*/*.json")):
        try:
            out.append((path.relative_to(share_root).as_posix(), json.loads(path.read_text())))
        except (ValueError, OSError) as exc:
            log.warning("unreadable failure record %s: %s", path, exc)
    return out
