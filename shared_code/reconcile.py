"""Reconciliation: find raw blobs the pipeline never finished, remove killed workers' staging
orphans (:func:`shared_code.staging.sweep_orphans`), and report the poison queue (its depth;
which of its messages name blob versions since converted, i.e. are resolved).

Covers what Event Grid and the host cannot: a delivery that was lost, a decimate that crashed or
timed out after claiming a file, a convert message that vanished. A raw blob is *unfinished*
when it is older than the grace period and its current version (ETag) has no ledger row, or a
row that is neither ``converted`` nor still within its claim's lease; ``failed`` rows only
when asked (they wait for an operator's fix and replay, not for a blind retry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared_code import telemetry
from shared_code.etags import canonical_etag
from shared_code.ledger import (
    CONVERTED,
    DECIMATED,
    FAILED,
    RECEIVED,
    SUPERSEDED,
    Ledger,
    row_key,
)
from shared_code.share_layout import BlobNameError, parse_blob_name
from shared_code.staging import sweep_orphans

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueServiceClient

    from shared_code.settings import Settings

log = logging.getLogger(__name__)

#: Raw blobs last modified longer ago than this (hours) are not looked at: they were
#: reconciled long ago, and the listing of a years-old container must stay bounded.
DEFAULT_LOOKBACK_HOURS = 7 * 24.0

#: Poison messages :func:`poison_messages` lists at most: one Peek Messages call returns up to
#: 32 (https://learn.microsoft.com/rest/api/storageservices/peek-messages, ``numofmessages``).
MAX_POISON_LISTED = 32

#: Re-drives per run at most (the rest waits for the next run), so that a run stays well inside
#: the function timeout even after an outage left thousands of files behind.
DEFAULT_MAX_REDRIVES = 200


@dataclass(frozen=True)
class UnfinishedBlob:
    """A raw blob version to re-drive, and why (``state``: the ledger state, or ``missing``)."""

    name: str
    etag: str
    field: str
    last_modified: datetime
    state: str
    reason: str = ""


@dataclass
class ReconcileReport:
    """What one reconciliation run found and did."""

    unfinished: list[UnfinishedBlob] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    deferred: int = 0
    poison_depth: int = 0
    orphans_removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "unfinished": len(self.unfinished),
            "redriven": self.redriven,
            "errors": self.errors,
            "deferred": self.deferred,
            "poison_depth": self.poison_depth,
            "orphans_removed": len(self.orphans_removed),
        }


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def find_unfinished(
    container: ContainerClient,
    ledger: Ledger,
    grace_minutes: float,
    now: datetime | None = None,
    *,
    include_failed: bool = False,
    lookback_hours: float | None = DEFAULT_LOOKBACK_HOURS,
) -> list[UnfinishedBlob]:
    """Raw blobs older than ``grace_minutes`` (minutes, by last modification, i.e. the current
    version's upload) whose current ETag has no finished ledger row. Oldest first.

    Unfinished means: no row (the event never arrived); ``received`` with an expired lease
    (decimate crashed or timed out); ``decimated`` not updated for ``grace_minutes`` (the
    convert message went missing); ``failed`` only with ``include_failed``. Blob names the
    pipeline rejects are skipped (their failure is recorded when their event arrives).
    ``lookback_hours``: ignore blobs older than that (None: all).
    """
    now = now or datetime.now(UTC)
    grace = timedelta(minutes=grace_minutes)
    oldest = now - timedelta(hours=lookback_hours) if lookback_hours else None
    # One ledger query per run instead of one lookup per blob; rows of older files may have
    # been updated later (replays), never earlier than their blob's upload, so this covers all.
    rows = ledger.query(since=oldest - timedelta(days=1)) if oldest else ledger.query()
    by_key = {(str(r.get("field")), str(r.get("key"))): r for r in rows}
    found: list[UnfinishedBlob] = []
    for blob in container.list_blobs():
        modified = _when(blob.last_modified) or _when(blob.creation_time)
        if modified is None or now - modified < grace:
            continue
        if oldest is not None and modified < oldest:
            continue
        try:
            field_name = parse_blob_name(blob.name).field
        except BlobNameError:
            log.debug("reconcile: %s skipped, not a pipeline blob name", blob.name)
            continue
        etag = canonical_etag(blob.etag)
        row = by_key.get((field_name, row_key(blob.name, etag)))
        if row is None:
            state, reason = "missing", "no ledger row: the event never arrived"
        else:
            state = str(row.get("state"))
            if state in (CONVERTED, SUPERSEDED):
                continue
            if state == FAILED:
                if not include_failed:
                    continue
                reason = f"failed in {row.get('stage')}: {row.get('reason')}"
            elif state == RECEIVED:
                lease = _when(row.get("lease_until"))
                if lease is not None and lease > now:
                    continue  # decimate is running on it
                reason = "claimed but never finished (crash or timeout)"
            elif state == DECIMATED:
                updated = _when(row.get("updated"))
                if updated is not None and now - updated < grace:
                    continue  # convert is queued
                reason = "decimated but never converted"
            else:
                reason = f"unknown ledger state {state!r}"
        found.append(UnfinishedBlob(blob.name, etag, field_name, modified, state, reason))
    return sorted(found, key=lambda b: b.last_modified)


def poison_queue_depth(queues: QueueServiceClient, queue_name: str) -> int:
    """Approximate number of messages in ``<queue_name>-poison`` (0 if it does not exist).

    The Functions host creates that queue and moves a message there after ``maxDequeueCount``
    failed attempts; anything in it is a convert that needs an operator.
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = queues.get_queue_client(f"{queue_name}-poison").get_queue_properties()
    except ResourceNotFoundError:
        return 0
    return int(props.approximate_message_count or 0)


def poison_messages(settings: Settings, ledger: Ledger) -> list[dict[str, Any]]:
    """The convert poison queue's first :data:`MAX_POISON_LISTED` messages (peeked, left in
    place), each with the blob version it names and ``resolved``: True when that version's
    ledger row has since reached ``converted`` (a replay or reconcile recovered the file), so
    that an operator sees which poison messages still need work. A message that is not a
    convert request is listed with its ``error`` and never resolved. [] without the queue.
    """
    import base64
    import binascii
    import contextlib

    from azure.core.exceptions import ResourceNotFoundError

    from shared_code.messages import ConvertRequest
    from shared_code.storage import queue_service

    # No decode policy: a poison message may be anything, and one bad body must not hide the rest.
    queue = queue_service(settings.storage).get_queue_client(f"{settings.convert_queue}-poison")
    try:
        peeked = queue.peek_messages(max_messages=MAX_POISON_LISTED)
    except ResourceNotFoundError:
        return []
    listed: list[dict[str, Any]] = []
    for message in peeked:
        entry: dict[str, Any] = {"id": message.id, "resolved": False}
        text = str(message.content or "")
        # The host's queue trigger reads (and the pipeline writes) base64 bodies; a body that is
        # not base64 is parsed as it is.
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            text = base64.b64decode(text, validate=True).decode("utf-8")
        try:
            request = ConvertRequest.from_json(text)
        except Exception as exc:
            entry["error"] = telemetry.scrub(f"{type(exc).__name__}: {exc}")[:300]
            listed.append(entry)
            continue
        row = ledger.get(request.field, request.source.name, request.source.etag)
        state = str(row.get("state")) if row else "missing"
        entry.update(
            field=request.field, blob=request.source.name, etag=request.source.etag,
            ledger_state=state, resolved=state == CONVERTED,
        )  # fmt: skip
        listed.append(entry)
    return listed


def run_reconcile(
    settings: Settings,
    redrive: Callable[[Settings, str], object],
    now: datetime | None = None,
    *,
    include_failed: bool = False,
    max_redrives: int = DEFAULT_MAX_REDRIVES,
) -> ReconcileReport:
    """One reconciliation run: find unfinished blobs, ``redrive(settings, blob_name)`` each
    (at most ``max_redrives``; one failure does not stop the others), report the poison
    queue depth as the ``PoisonQueueDepth`` metric, remove the share's staging orphans. For the
    timer and the CLI."""
    from shared_code.storage import blob_service, queue_service

    report = ReconcileReport()
    # First, so that a crash later in the run does not keep a dead worker's spool for another.
    report.orphans_removed = sweep_orphans(settings.share_root)
    container = blob_service(settings.storage).get_container_client(settings.raw_container)
    ledger = Ledger.from_settings(settings)
    report.unfinished = find_unfinished(
        container, ledger, settings.reconcile_grace_minutes, now, include_failed=include_failed
    )
    for blob in report.unfinished[:max_redrives]:
        try:
            redrive(settings, blob.name)
            report.redriven.append(blob.name)
            telemetry.track_metric(telemetry.RECONCILE_REDRIVEN, 1, field=blob.field)
            log.info(
                "reconcile: re-drove %s (%s: %s)",
                blob.name, blob.state, blob.reason,
                extra={"custom_dimensions": {"blob": blob.name, "field": blob.field,
                                             "etag": blob.etag, "ledger_state": blob.state}},
            )  # fmt: skip
        except Exception as exc:
            report.errors[blob.name] = telemetry.scrub(f"{type(exc).__name__}: {exc}")[:300]
            log.warning("reconcile: re-driving %s failed: %s", blob.name, exc)
    report.deferred = max(0, len(report.unfinished) - max_redrives)
    report.poison_depth = poison_queue_depth(
        queue_service(settings.storage), settings.convert_queue
    )
    telemetry.track_metric(
        telemetry.POISON_QUEUE_DEPTH, report.poison_depth, queue=f"{settings.convert_queue}-poison"
    )
    log.info(
        "reconcile: %d unfinished, %d re-driven, %d failed, %d deferred; poison queue %d; "
        "%d staging orphans removed",
        len(report.unfinished), len(report.redriven), len(report.errors), report.deferred,
        report.poison_depth, len(report.orphans_removed),
    )  # fmt: skip
    return report
