"""Event Grid trigger: a raw blob was created; decimate it and queue it for conversion."""

from __future__ import annotations

import logging
from typing import Any

import azure.functions as func

from shared_code.pipeline import handle_blob_created
from shared_code.settings import get_settings
from shared_code.telemetry import trace_parent_of

bp = func.Blueprint()


def event_payload(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event in its own wire schema, as Event Grid delivered it."""
    if isinstance(event, func.CloudEvent):
        time = event.time
        return {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "time": time.isoformat() if time else None,
            "subject": event.subject,
            "data": event.get_json(),
        }
    event_time = event.event_time
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event_time.isoformat() if event_time else None,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


@bp.function_name("decimate")
@bp.event_grid_trigger(arg_name="event")
def decimate(event: func.EventGridEvent, context: func.Context) -> None:
    report = handle_blob_created(
        event_payload(event), get_settings(), traceparent=trace_parent_of(context)
    )
    if report is not None:
        logging.info("decimate done: %s -> %s", report.blob, report.output_path)
