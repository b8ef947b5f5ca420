"""The SeisComP VM's provisioning health, as the VM publishes it to blob storage.

The VM's boot path (``ccs-provision`` in infra/cloud-init/seiscomp.yaml) rewrites
``/var/lib/ccs/health.json`` after every step, and ``ccs-health.timer`` every 5 minutes, and
puts each version into ``VM_HEALTH_CONTAINER``/``VM_HEALTH_BLOB``; docs/deployment.md gives the
format. This module reads it for the ``status`` endpoint. The VM is not the app: nothing here
makes the app's own ``health`` go down.

What the reader believes (``state``):

- the VM's own ``status`` (``ok``, ``failed``, ``running``) while the report is fresh;
- ``unknown`` when there is no report, it cannot be read, or it is older than
  ``STALE_AFTER_S`` (then ``stale`` is true and the last report is still shown).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared_code.settings import Settings

#: Seconds after which a report no longer counts (state ``unknown``, ``stale`` true): the VM
#: republishes every 5 min (ccs-health.timer), so 20 min is four missed heartbeats. A
#: provisioning step running longer than this (a first SeisComP install on a slow mirror) also
#: shows as stale until it ends: the heartbeat leaves the file to the run that holds the lock.
STALE_AFTER_S = 20 * 60

#: Seconds the status endpoint waits for the blob (connect and read), no retries.
TIMEOUT_S = 5.0

#: Characters of the VM's failure detail passed on (its last 5 log lines).
MAX_DETAIL_CHARS = 2000

MAX_REASON_CHARS = 300

VM_STATUSES = ("ok", "failed", "running")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def interpret(report: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What the status endpoint shows for a parsed health report.

    Returns ``{"state", "stale", "reason", "status", "failed_step", "detail", "seedlink",
    "release", "updated", "age_s", "stale_after_s"}``; ``age_s`` in seconds since the VM's
    ``updated`` (None when it has none).
    """
    updated = _parse_time(report.get("updated"))
    age_s = round((now - updated).total_seconds(), 1) if updated else None
    status = report.get("status")
    body: dict[str, Any] = {
        "status": status,
        "failed_step": report.get("failed_step"),
        "detail": str(report.get("detail") or "")[-MAX_DETAIL_CHARS:],
        "seedlink": report.get("seedlink"),
        "release": report.get("release"),
        "updated": report.get("updated"),
        "age_s": age_s,
        "stale_after_s": STALE_AFTER_S,
    }
    if status not in VM_STATUSES:
        return {**body, "state": "unknown", "stale": False, "reason": f"status {status!r}"}
    if age_s is None:
        return {**body, "state": "unknown", "stale": False, "reason": "report has no 'updated'"}
    if age_s > STALE_AFTER_S:
        reason = f"last report {age_s / 60:.0f} min old (stale after {STALE_AFTER_S // 60} min)"
        return {**body, "state": "unknown", "stale": True, "reason": reason}
    return {**body, "state": status, "stale": False, "reason": None}


def read_vm_health(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The VM's health as published in ``VM_HEALTH_CONTAINER``/``VM_HEALTH_BLOB``.

    Never raises for a storage or format problem: that is the VM's health being unknown, and
    ``reason`` says why (scrubbed). ``now``: the current time (UTC), for tests.
    """
    from azure.core.exceptions import ResourceNotFoundError

    from shared_code.storage import blob_service
    from shared_code.telemetry import scrub

    now = now or datetime.now(UTC)
    source = f"{settings.vm_health_container}/{settings.vm_health_blob}"
    unknown: dict[str, Any] = {"source": source, "state": "unknown", "stale": False}
    blob = blob_service(settings.storage).get_blob_client(
        settings.vm_health_container, settings.vm_health_blob
    )
    try:
        data = blob.download_blob(
            retry_total=0, connection_timeout=TIMEOUT_S, read_timeout=TIMEOUT_S
        ).readall()
    except ResourceNotFoundError:
        return {**unknown, "reason": f"no health report at {source} (has the VM booted?)"}
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        reason = f"cannot read {source}: {type(exc).__name__}: {first}"
        return {**unknown, "reason": scrub(reason)[:MAX_REASON_CHARS]}
    try:
        report = json.loads(data)
        if not isinstance(report, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return {**unknown, "reason": f"{source} is not a health report: {exc}"}
    return {"source": source, **interpret(report, now)}
