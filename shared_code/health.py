"""Health check: can this app reach everything the pipeline needs, right now?

Each check is one cheap call with a short timeout and no retries, all run in parallel, so the
whole check answers within about ``timeout_s`` seconds even when a dependency hangs (a stale
SMB mount included). The body names what is down and why, scrubbed: no key, SAS or connection
string ever appears in it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared_code.settings import Settings
from shared_code.share_layout import STAGING

log = logging.getLogger(__name__)

#: Seconds each check may take (connect and read timeouts of the SDK calls; share probe).
DEFAULT_TIMEOUT_S = 5.0
MAX_ERROR_CHARS = 300


class CheckFailedError(RuntimeError):
    """A dependency answered, but not as the pipeline needs."""


def _sdk_kwargs(timeout_s: float) -> dict[str, Any]:
    # Per-call options azure-core honours: no retries (a health check reports, it does not
    # insist), bounded connect/read waits.
    return {"retry_total": 0, "connection_timeout": timeout_s, "read_timeout": timeout_s}


def check_blob(settings: Settings, timeout_s: float) -> str:
    """The raw container exists and can be read."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared_code.storage import blob_service

    container = blob_service(settings.storage).get_container_client(settings.raw_container)
    try:
        container.get_container_properties(**_sdk_kwargs(timeout_s))
    except ResourceNotFoundError:
        raise CheckFailedError(f"container {settings.raw_container!r} does not exist") from None
    return f"container {settings.raw_container!r} reachable"


def check_queue(settings: Settings, timeout_s: float) -> str:
    """The convert queue exists; reports its approximate depth."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared_code.storage import queue_client

    queue = queue_client(settings.storage, settings.convert_queue)
    try:
        props = queue.get_queue_properties(**_sdk_kwargs(timeout_s))
    except ResourceNotFoundError:
        raise CheckFailedError(f"queue {settings.convert_queue!r} does not exist") from None
    return (
        f"queue {settings.convert_queue!r} reachable, ~{props.approximate_message_count} messages"
    )


def check_table(settings: Settings, timeout_s: float) -> str:
    """The table service answers a one-row query on the ledger table."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared_code.storage import table_service

    table = table_service(settings.storage).get_table_client(settings.ledger_table)
    try:
        pages = table.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": "health-probe"},
            results_per_page=1,
            **_sdk_kwargs(timeout_s),
        ).by_page()
        next(pages, None)
    except ResourceNotFoundError:
        # The ledger creates its table on first write: reachable is what matters here.
        return f"table service reachable, table {settings.ledger_table!r} not created yet"
    return f"table {settings.ledger_table!r} reachable"


def check_share(settings: Settings, timeout_s: float) -> str:
    """The share is mounted and writable: write, fsync and delete a probe under staging/.

    The share root itself is never created here: a missing mount must show as down, not be
    papered over by a local directory.
    """
    root = Path(settings.share_root)
    if not root.is_dir():
        raise CheckFailedError("share root is not a directory (is the share mounted?)")
    staging = root / STAGING
    staging.mkdir(exist_ok=True)
    probe = staging / f"health-{uuid.uuid4().hex}.probe"
    try:
        with open(probe, "wb") as fh:
            fh.write(b"ok")
            fh.flush()
            os.fsync(fh.fileno())
    finally:
        probe.unlink(missing_ok=True)
    return "share writable"


CHECKS: dict[str, Callable[[Settings, float], str]] = {
    "blob": check_blob,
    "queue": check_queue,
    "table": check_table,
    "share": check_share,
}


def _describe(exc: BaseException) -> str:
    from shared_code.telemetry import scrub

    if isinstance(exc, CheckFailedError):
        text = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return scrub(text)[:MAX_ERROR_CHARS]


def check_health(
    settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[bool, dict[str, Any]]:
    """Check blob, queue, table and share; returns ``(ok, body)``.

    ``body`` is JSON-ready: ``{"status": "ok"|"down", "down": [names], "checks": {name:
    {"ok": bool, "detail": str, "seconds": float}}}``. Serve it with 200 when ``ok`` and 503
    otherwise. ``timeout_s``: seconds per check (they run in parallel).
    """
    results: dict[str, dict[str, Any]] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="hc")
    started = time.monotonic()
    futures = {name: pool.submit(_timed, fn, settings, timeout_s) for name, fn in CHECKS.items()}
    try:
        for name, future in futures.items():
            remaining = max(0.1, timeout_s + 1.0 - (time.monotonic() - started))
            try:
                detail, seconds = future.result(timeout=remaining)
                results[name] = {"ok": True, "detail": detail, "seconds": round(seconds, 3)}
            except concurrent.futures.TimeoutError:
                results[name] = {
                    "ok": False,
                    "detail": f"no answer within {timeout_s:g} s",
                    "seconds": round(time.monotonic() - started, 3),
                }
            except Exception as exc:
                results[name] = {
                    "ok": False,
                    "detail": _describe(exc),
                    "seconds": round(time.monotonic() - started, 3),
                }
    finally:
        # A hung check (stale mount) must not hold the response: leave its thread behind.
        pool.shutdown(wait=False, cancel_futures=True)
    down = [name for name, result in results.items() if not result["ok"]]
    if down:
        log.warning("health: down: %s", ", ".join(f"{n} ({results[n]['detail']})" for n in down))
    return not down, {"status": "down" if down else "ok", "down": down, "checks": results}


def _timed(
    fn: Callable[[Settings, float], str], settings: Settings, timeout_s: float
) -> tuple[str, float]:
    start = time.monotonic()
    detail = fn(settings, timeout_s)
    return detail, time.monotonic() - start
