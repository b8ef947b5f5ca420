"""Queue trigger: a decimated file is ready; write it as MiniSEED for SeedLink."""

from __future__ import annotations

import logging

import azure.functions as func

from shared_code.pipeline import handle_convert_message
from shared_code.settings import STORAGE_CONNECTION, get_settings
from shared_code.telemetry import trace_parent_of

bp = func.Blueprint()


@bp.function_name("convert")
@bp.queue_trigger(arg_name="msg", queue_name="%CONVERT_QUEUE%", connection=STORAGE_CONNECTION)
def convert(msg: func.QueueMessage, context: func.Context) -> None:
    body = msg.get_body().decode("utf-8", errors="replace")
    report = handle_convert_message(body, get_settings(), traceparent=trace_parent_of(context))
    logging.info(
        "convert done: %s -> %s (dequeue %s)", report.blob, report.output_path, msg.dequeue_count
    )
