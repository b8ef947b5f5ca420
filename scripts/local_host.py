"""A stand-in for the Functions host, for local runs and tests: there is no host here.

It follows the host's contract rather than calling our code directly: functions are found
through ``app.get_functions()`` as the host indexes them, events and queue messages are turned
into ``azure.functions`` objects by the worker's own input converters, the queue trigger gets
the base64-decoded body exactly as the host decodes it (``messageEncoding`` in host.json), and
a message that fails ``maxDequeueCount`` times moves to ``<queue>-poison`` as the host moves it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.queue import QueueMessageInConverter

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger(__name__)


def host_json() -> dict[str, Any]:
    return dict(json.loads((ROOT / "host.json").read_text()))


@cache
def indexed_functions() -> dict[str, Any]:
    """The app's functions by name, indexed once as the host does.

    ``FunctionApp.get_functions()`` may only be called once per app: a second call sees the
    names from the first and raises "does not have a unique function name".
    """
    import function_app

    return {str(fn.get_function_name()): fn for fn in function_app.app.get_functions()}


def user_function(name: str) -> Callable[..., Any]:
    """The Python function the host would invoke for ``name``, found by indexing the app."""
    try:
        return indexed_functions()[name].get_user_function()
    except KeyError:
        raise LookupError(f"function {name!r} is not indexed by function_app") from None


class TraceContext:
    """The worker's trace context: W3C ``Traceparent``/``Tracestate`` of the invocation."""

    def __init__(self) -> None:
        self.Traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
        self.Tracestate = ""
        self.Attributes: dict[str, str] = {}


class InvocationContext:
    """What the worker passes as ``context``: invocation id, function name, trace context."""

    def __init__(self, function_name: str) -> None:
        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_directory = str(ROOT)
        self.trace_context = TraceContext()
        self.retry_context = None


def deliver_event(payload: dict[str, Any]) -> None:
    """Deliver one Event Grid event (either schema) to ``decimate`` as the worker would."""
    datum = meta.Datum(json.dumps(payload), "json")
    event = EventGridEventInConverter.decode(datum, trigger_metadata={})
    user_function("decimate")(event, InvocationContext("decimate"))


@dataclass
class DrainResult:
    processed: int = 0
    failed_attempts: int = 0
    poisoned: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def drain_queue(queue_client: Any, poison_client: Any, max_rounds: int = 100) -> DrainResult:
    """Run ``convert`` on every message of the queue until it is empty.

    ``queue_client`` must not decode (the host decodes base64 itself, below). A failing message
    is made visible again at once and retried until ``maxDequeueCount``, then moved to the
    poison queue, as the host does.
    """
    max_dequeue = int(host_json()["extensions"]["queues"].get("maxDequeueCount", 5))
    base64_encoded = (
        host_json()["extensions"]["queues"].get("messageEncoding", "base64") == "base64"
    )
    convert = user_function("convert")
    result = DrainResult()
    for _ in range(max_rounds):
        batch = list(queue_client.receive_messages(messages_per_page=16, visibility_timeout=60))
        if not batch:
            break
        for message in batch:
            text = message.content
            try:
                body = base64.b64decode(text, validate=True) if base64_encoded else text.encode()
            except (binascii.Error, ValueError):
                # The host cannot decode it: straight to poison, the user code never runs.
                body = None
            metadata = {
                "Id": meta.Datum(message.id, "string"),
                "DequeueCount": meta.Datum(message.dequeue_count, "int"),
                "PopReceipt": meta.Datum(message.pop_receipt, "string"),
            }
            try:
                if body is None:
                    raise ValueError("message is not valid base64")
                datum = meta.Datum(body, "bytes")
                message_obj = QueueMessageInConverter.decode(datum, trigger_metadata=metadata)
                convert(message_obj, InvocationContext("convert"))
            except Exception as exc:
                result.failed_attempts += 1
                result.errors.append(f"{type(exc).__name__}: {exc}")
                if body is None or message.dequeue_count >= max_dequeue:
                    poison_client.send_message(text)
                    queue_client.delete_message(message)
                    result.poisoned.append(text)
                else:
                    queue_client.update_message(message, visibility_timeout=0)
                continue
            queue_client.delete_message(message)
            result.processed += 1
    return result
