"""A stand-in for the Functions host, for local runs and tests: there is no host here.

It follows the host's contract rather than calling our code directly: functions are found
through ``app.get_functions()`` as the host indexes them, events and queue messages are turned
into ``azure.functions`` objects by the worker's own input converters, the queue trigger gets
the base64-decoded body exactly as the host decodes it (``messageEncoding`` in host.json), and
a message that fails ``maxDequeueCount`` times moves to ``<queue>-poison`` as the host moves it,
and ``listen`` polls an idle queue on the host's schedule (``PollingBackoff``), so latency
measured locally includes the wait the real host adds after a quiet spell.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import time
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


#: The WebJobs queue listener's shortest wait between polls of an empty queue, s
#: (azure-webjobs-sdk ``QueuePollingIntervals.Minimum`` = 100 ms); also its backoff step.
MIN_POLLING_INTERVAL_S = 0.1
#: The host's wait when host.json sets no ``maxPollingInterval``, s
#: (``QueuePollingIntervals.DefaultMaximum`` = 1 min; 2 s only in its Development environment).
DEFAULT_MAX_POLLING_INTERVAL_S = 60.0
#: ``RandomizedExponentialBackoffStrategy.RandomizationFactor``: each step is scaled by a
#: uniform factor in [1 - 0.2, 1 + 0.2).
RANDOMIZATION_FACTOR = 0.2

# .NET TimeSpan "[d.]hh:mm[:ss[.fffffff]]"; a bare integer is a number of DAYS (TimeSpan.Parse),
# which is what a host.json value like "2" or 2 turns into.
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?")


def parse_timespan(value: str | int) -> float:
    """A host.json TimeSpan as .NET reads it, in s: "00:00:02" -> 2.0, "2" or 2 -> 172800.0."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text) * 86400.0
    m = _TIMESPAN.fullmatch(text)
    if not m:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan ([d.]hh:mm[:ss[.fffffff]])")
    days, hours, minutes, seconds, fraction = m.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan (a field is out of range)")
    return (
        int(days or 0) * 86400.0
        + int(hours) * 3600.0
        + int(minutes) * 60.0
        + int(seconds or 0)
        + (int(fraction.ljust(7, "0")) / 1e7 if fraction else 0.0)
    )


def max_polling_interval() -> float:
    """host.json's ``extensions.queues.maxPollingInterval`` in s (the host's default if unset)."""
    value = host_json().get("extensions", {}).get("queues", {}).get("maxPollingInterval")
    return DEFAULT_MAX_POLLING_INTERVAL_S if value is None else parse_timespan(value)


class PollingBackoff:
    """The Functions host's wait between polls of a queue that had no message, in s.

    A port of ``GetNextDelay`` in Azure/azure-webjobs-sdk
    src/Microsoft.Azure.WebJobs.Host/Timers/RandomizedExponentialBackoffStrategy.cs as the
    Storage Queues extension's ``QueueListener`` (Azure/azure-sdk-for-net,
    Microsoft.Azure.WebJobs.Extensions.Storage.Queues) uses it: ``new
    RandomizedExponentialBackoffStrategy(QueuePollingIntervals.Minimum, maximumInterval)``, so
    the step is the 100 ms minimum, and ``GetNextDelay(executionSucceeded:
    _foundMessageSinceLastDelay)`` only after an empty poll:
    after a poll that found a message the next wait is the minimum; after each empty poll it
    grows to ``minimum + U[0.8, 1.2) * 2**(k-1) * minimum`` (k = 1, 2, ...) until that reaches
    the maximum, and then stays there until a message is found. The listener polls again at
    once while batches keep coming and asks for a delay only when a poll came back empty.
    """

    def __init__(
        self,
        maximum: float,
        minimum: float = MIN_POLLING_INTERVAL_S,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if not 0 <= minimum <= maximum:
            raise ValueError(f"polling interval bounds must be 0 <= {minimum} <= {maximum} s")
        self.minimum, self.maximum, self._uniform = minimum, maximum, uniform
        self._current = 0.0
        self._exponent = 0

    def next_delay(self, found_message: bool) -> float:
        """The wait before the next poll, s; ``found_message``: a message came since the last."""
        if found_message:
            self._current, self._exponent = self.minimum, 1
        elif self._current != self.maximum:
            backoff = self.minimum
            if self._exponent > 0:
                factor = self._uniform(1 - RANDOMIZATION_FACTOR, 1 + RANDOMIZATION_FACTOR)
                backoff += factor * 2 ** (self._exponent - 1) * self.minimum
            if backoff < self.maximum:
                self._current = backoff
                self._exponent += 1
            else:
                self._current = self.maximum
        return self._current


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


def _queue_options() -> tuple[int, bool]:
    """host.json's ``maxDequeueCount`` and whether messages are base64 (``messageEncoding``)."""
    queues = host_json()["extensions"]["queues"]
    base64_encoded = queues.get("messageEncoding", "base64") == "base64"
    return int(queues.get("maxDequeueCount", 5)), base64_encoded


def poll_once(queue_client: Any, poison_client: Any, result: DrainResult) -> bool:
    """One poll of the queue, as the host's listener makes it: run ``convert`` on each message
    received (up to 16). Returns whether any message came.

    ``queue_client`` must not decode (the host decodes base64 itself, below). A failing message
    is made visible again at once and retried until ``maxDequeueCount``, then moved to the
    poison queue, as the host does.
    """
    max_dequeue, base64_encoded = _queue_options()
    convert = user_function("convert")
    batch = list(queue_client.receive_messages(messages_per_page=16, visibility_timeout=60))
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
    return bool(batch)


def drain_queue(queue_client: Any, poison_client: Any, max_rounds: int = 100) -> DrainResult:
    """Run ``convert`` on every message of the queue until a poll finds it empty.

    No waiting: this is for "process what is there now". To measure latency, use ``listen``.
    """
    result = DrainResult()
    for _ in range(max_rounds):
        if not poll_once(queue_client, poison_client, result):
            break
    return result


def listen(
    queue_client: Any,
    poison_client: Any,
    stop: Callable[[DrainResult], bool],
    sleep: Callable[[float], None] = time.sleep,
    backoff: PollingBackoff | None = None,
) -> DrainResult:
    """Poll the queue as the host's ``QueueListener`` does until ``stop(result)`` is true.

    Polls again at once after a poll that found messages; after an empty poll waits
    ``backoff.next_delay`` (host.json's ``maxPollingInterval`` by default) via ``sleep``, so a
    test can pass a clock that records the waits instead of sleeping.
    """
    backoff = backoff or PollingBackoff(max_polling_interval())
    result = DrainResult()
    found_since_last_delay = False
    while not stop(result):
        if poll_once(queue_client, poison_client, result):
            found_since_last_delay = True
            continue
        sleep(backoff.next_delay(found_since_last_delay))
        found_since_last_delay = False
    return result
