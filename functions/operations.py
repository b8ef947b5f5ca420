"""Operations: health and status endpoints, reconciliation and retention timers.

Thin adapters; the work lives in ``shared_code.health``, ``ledger``, ``reconcile`` and
``retention``. HTTP routes use function-level keys (``?code=`` or ``x-functions-key``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

from shared_code import telemetry
from shared_code.settings import Settings, SettingsError, get_settings
from shared_code.times import parse_since

bp = func.Blueprint()
log = logging.getLogger(__name__)

#: NCRONTAB (with seconds), UTC: reconciliation every 10 minutes, retention daily at 03:00.
RECONCILE_SCHEDULE = "0 */10 * * * *"
RETENTION_SCHEDULE = "0 0 3 * * *"

#: Rows /api/status returns at most (the newest ones); ``truncated`` says when more matched.
MAX_STATUS_ROWS = 1000


def _settings() -> Settings:
    settings = get_settings()
    telemetry.configure(settings.appinsights_connection_string)
    return settings


def _json(body: Any, status_code: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, default=str, sort_keys=True),
        status_code=status_code,
        mimetype="application/json",
    )


@bp.function_name("health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """200 when blob, queue, table and the share are usable, else 503; the body names them."""
    from shared_code.health import check_health

    try:
        settings = _settings()
    except SettingsError as exc:
        detail = telemetry.scrub(str(exc))
        return _json(
            {"status": "down", "down": ["settings"],
             "checks": {"settings": {"ok": False, "detail": detail}}},
            503,
        )  # fmt: skip
    ok, body = check_health(settings)
    return _json(body, 200 if ok else 503)


@bp.function_name("status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    """Ledger query: ``?field=&state=&since=&until=``; JSON with per-field/state counts and the
    matching rows (newest last, at most MAX_STATUS_ROWS), and ``vm``: the SeisComP VM's
    provisioning health as it last published it (shared_code.vm_health); ``poison``: the
    convert poison queue's messages, each ``resolved`` once its blob version was converted."""
    from shared_code.ledger import STATES, Ledger
    from shared_code.reconcile import poison_messages
    from shared_code.vm_health import read_vm_health

    field = (req.params.get("field") or "").strip().lower() or None
    state = (req.params.get("state") or "").strip().lower() or None
    if state is not None and state not in STATES:
        return _json({"error": f"state {state!r}: expected one of {', '.join(STATES)}"}, 400)
    try:
        since = parse_since(req.params.get("since"))
        until = parse_since(req.params.get("until"))
    except ValueError as exc:
        return _json({"error": f"since/until {exc}"}, 400)
    settings = _settings()
    ledger = Ledger.from_settings(settings)
    rows = ledger.query(field=field, state=state, since=since, until=until)
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        per_field = counts.setdefault(str(row.get("field")), {})
        per_field[str(row.get("state"))] = per_field.get(str(row.get("state")), 0) + 1
    return _json(
        {
            "query": {"field": field, "state": state, "since": since, "until": until},
            "count": len(rows),
            "counts": counts,
            "truncated": len(rows) > MAX_STATUS_ROWS,
            "rows": rows[-MAX_STATUS_ROWS:],
            "vm": read_vm_health(settings),
            "poison": poison_messages(settings, ledger),
        }
    )


@bp.function_name("reconcile")
@bp.timer_trigger(arg_name="timer", schedule=RECONCILE_SCHEDULE, run_on_startup=False)
def reconcile(timer: func.TimerRequest, context: func.Context) -> None:
    """Re-drive raw blobs older than RECONCILE_GRACE_MINUTES with no finished ledger row;
    report the poison queue's depth."""
    from shared_code.pipeline import redrive_blob
    from shared_code.reconcile import run_reconcile

    settings = _settings()
    with telemetry.operation(
        telemetry.new_operation_id(),
        traceparent=telemetry.trace_parent_of(context),
        stage="reconcile",
    ):
        if timer.past_due:
            log.info("reconcile: timer past due, running now")
        report = run_reconcile(settings, redrive_blob)
        log.info("reconcile finished", extra={"custom_dimensions": report.as_dict()})


@bp.function_name("retention")
@bp.timer_trigger(arg_name="timer", schedule=RETENTION_SCHEDULE, run_on_startup=False)
def retention(timer: func.TimerRequest, context: func.Context) -> None:
    """Delete decimated and MiniSEED files older than RETENTION_DAYS from the share."""
    from shared_code.retention import purge

    settings = _settings()
    with telemetry.operation(
        telemetry.new_operation_id(),
        traceparent=telemetry.trace_parent_of(context),
        stage="retention",
    ):
        removed = purge(settings.share_root, settings.retention_days)
        log.info(
            "retention removed %d files older than %s days",
            len(removed), settings.retention_days,
            extra={"custom_dimensions": {"files_removed": len(removed)}},
        )  # fmt: skip
