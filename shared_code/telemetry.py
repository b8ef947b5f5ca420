"""Telemetry: structured logs, custom metrics and correlation, sent to Application Insights.

This is the ONLY module that imports OpenCensus (``opencensus-ext-azure``, the product owner's
choice). OpenCensus is retired upstream (support ended 2024-09-30; Microsoft points to the
Azure Monitor OpenTelemetry distro, ``azure-monitor-opentelemetry``), so everything that touches
it stays behind the small public API below: moving to OpenTelemetry is a change to this file.

Behaviour:

- With ``APPLICATIONINSIGHTS_CONNECTION_STRING`` empty, :func:`configure` imports nothing and
  every call here is a cheap no-op: nothing fails, nothing blocks, nothing leaves the machine.
- OpenCensus is imported inside :func:`configure`, never at module import, so that importing
  ``function_app`` (what the host does at cold start) stays fast.
- Export runs on the exporters' background threads; an unreachable ingestion endpoint costs
  the caller nothing (the envelopes are retried from local storage, then dropped).
- Every log record and metric dimension passes the :func:`scrub` filter: account keys, SAS
  tokens, signatures, instrumentation keys and bearer tokens never reach a log line.

Correlation:

- ``operation_id`` (custom dimension) is the pipeline's own id for one raw file: decimate sets
  it from the Event Grid event id and puts it in the ConvertRequest; convert sets it from the
  message. One KQL filter on ``customDimensions.operation_id`` shows the file's whole path.
- ``operation_Id`` (the Application Insights column) is the Functions host's W3C trace id of the
  current invocation, taken from ``context.trace_context`` (see :func:`trace_parent_of`), so our
  records sit in the same end-to-end transaction as the host's own request telemetry. That is
  what the retired ``opencensus-extension-azure-functions`` package did in its pre-invocation
  hook; doing it here needs neither that package nor ``PYTHON_ENABLE_WORKER_EXTENSIONS``.

Metrics go to ``customMetrics`` pre-aggregated per export interval (sum, count, min, max per
metric and dimension set), because the OpenCensus stats exporter re-sends cumulative totals
every interval (census-instrumentation/opencensus-python#1202) and drops distributions. Exact
per-file values (for percentiles) travel as custom dimensions of the structured log records
that :func:`record_stage` and :func:`record_end_to_end` write.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

#: Loggers whose records are exported (their children included). Use ``getLogger(__name__)``.
LOGGER_NAMESPACES: tuple[str, ...] = ("shared_code", "functions", "function_app")

#: Metric namespace in Azure Monitor (a metric alert names it as ``metricNamespace``).
METRIC_NAMESPACE = "ccs-passive"

# Metric names. Dimensions in brackets. The Bicep "field went quiet" alert uses the first.
MINISEED_FILES_WRITTEN = "MiniseedFilesWritten"  # [field] MiniSEED files made visible
FILES_PROCESSED = "FilesProcessed"  # [field, stage] files a stage finished
FILES_FAILED = "FilesFailed"  # [field, stage] files a stage failed on
BYTES_IN = "BytesIn"  # [field, stage] bytes read by a stage
BYTES_OUT = "BytesOut"  # [field, stage] bytes written by a stage
SAMPLES_IN = "SamplesIn"  # [field, stage] samples read (all traces)
SAMPLES_OUT = "SamplesOut"  # [field, stage] samples written (all traces)
NONFINITE_SAMPLES = "NonfiniteSamples"  # [field, stage] NaN/Inf samples written as gaps
STAGE_SECONDS = "StageSeconds"  # [field, stage] wall-clock seconds in a stage
END_TO_END_SECONDS = "EndToEndLatencySeconds"  # [field] blob created -> MiniSEED visible
POISON_QUEUE_DEPTH = "PoisonQueueDepth"  # [queue] messages in <queue>-poison
RECONCILE_REDRIVEN = "ReconcileRedriven"  # [field] files re-driven by reconciliation
RETENTION_FILES_REMOVED = "RetentionFilesRemoved"  # [top] files removed by retention

METRIC_NAMES: frozenset[str] = frozenset(
    {
        MINISEED_FILES_WRITTEN,
        FILES_PROCESSED,
        FILES_FAILED,
        BYTES_IN,
        BYTES_OUT,
        SAMPLES_IN,
        SAMPLES_OUT,
        NONFINITE_SAMPLES,
        STAGE_SECONDS,
        END_TO_END_SECONDS,
        POISON_QUEUE_DEPTH,
        RECONCILE_REDRIVEN,
        RETENTION_FILES_REMOVED,
    }
)

# ---------------------------------------------------------------------------------------------
# Scrubbing
# ---------------------------------------------------------------------------------------------

REDACTED = "<redacted>"

# Connection-string style keys: the value runs to the next ';' (a SharedAccessSignature value
# itself contains '&' and '=').
_CONN_KEYS = re.compile(
    r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|InstrumentationKey|"
    r"AccessKey|Password|Pwd|ClientSecret|Authorization)(\s*=\s*)([^;\s'\"]+)"
)
# SAS query parameters (service and user-delegation SAS): the value runs to the next '&'.
_SAS_PARAMS = (
    "sig|se|st|sv|sp|sr|ss|srt|spr|sip|si|sdd|skoid|sktid|skt|ske|sks|skv|saoid|suoid|scid|"
    "rscc|rscd|rsce|rscl|rsct|ses"
)
_SAS_QUERY = re.compile(rf"(?i)([?&](?:{_SAS_PARAMS})=)[^&\s'\"#]*")
# A query string that carries a signature is dropped whole (belt and braces for odd params).
_SIGNED_URL = re.compile(r"(?i)(https?://[^\s?'\"]+)\?([^\s'\"#]*\bsig=[^\s'\"#]*)")
# key=value / key: value pairs in reprs and JSON, e.g. {'account_key': '...'}
_KV_SECRET = re.compile(
    r"(?i)(['\"]?(?:\b|_)(?:account_?key|access_?key|secret|client_?secret|password|sas_?token|"
    r"credential|instrumentation_?key|connection_?string)['\"]?\s*[:=]\s*)"
    r"(['\"]?)([^'\"\s,;}]+)"
)
_BEARER = re.compile(r"(?i)\b(Bearer)\s+[A-Za-z0-9._~+/=-]+")
# Dimension names that announce a secret; their values are never exported.
_SECRET_NAME = re.compile(
    r"(?i)(account_?key|access_?key|secret|password|passwd|sas|signature|token|"
    r"connection_?string|credential|instrumentation_?key)"
)


def scrub(text: str) -> str:
    """Remove secrets from ``text``: account keys, SAS tokens, signatures, bearer tokens.

    Connection-string values (``AccountKey=``, ``SharedAccessSignature=``,
    ``InstrumentationKey=`` ...) and SAS query parameters (``sig=``, ``se=``, ``sv=`` ...)
    become ``<redacted>``; the rest of the text (blob names, paths, reasons) stays readable.
    """
    if not text:
        return text
    text = _SIGNED_URL.sub(lambda m: f"{m.group(1)}?{REDACTED}", text)
    text = _CONN_KEYS.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _SAS_QUERY.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _KV_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def scrub_dimensions(dims: Mapping[str, Any]) -> dict[str, Any]:
    """Scrubbed copy of custom dimensions: numbers and booleans kept, everything else a
    scrubbed string; a dimension whose *name* announces a secret is dropped to ``<redacted>``."""
    clean: dict[str, Any] = {}
    for key, value in dims.items():
        name = str(key)
        if _SECRET_NAME.search(name):
            clean[name] = REDACTED
        elif value is None or isinstance(value, bool | int | float):
            clean[name] = value
        else:
            clean[name] = scrub(str(value))
    return clean


class ScrubFilter(logging.Filter):
    """Logging filter that scrubs a record in place (message, args, exception text, dims).

    Installed on our exporter's handler and on the root logger's handlers (the Functions
    worker's handler among them, which forwards to the host), so a secret interpolated into a
    log message by any code never leaves the process.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        dims = getattr(record, "custom_dimensions", None)
        if isinstance(dims, Mapping):
            record.custom_dimensions = scrub_dimensions(dims)
        return True


# ---------------------------------------------------------------------------------------------
# Operation context
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Operation:
    operation_id: str
    trace_id: str | None
    span_id: str | None
    dims: Mapping[str, Any]


_current: contextvars.ContextVar[_Operation | None] = contextvars.ContextVar(
    "ccs_operation", default=None
)
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def new_operation_id() -> str:
    """A fresh operation id (32 hex digits), for work that has no event id (timers, CLI)."""
    return uuid.uuid4().hex


def trace_parent_of(context: object) -> str | None:
    """The W3C ``traceparent`` of a Functions invocation context, or None.

    The worker's trace context spells the property ``Traceparent`` (the Python worker's
    ``TraceContext``); the library's abstract class says ``trace_parent``. Both are
    read, duck-typed, so ``shared_code`` still never imports the Functions library.
    """
    trace_context = getattr(context, "trace_context", None)
    if trace_context is None:
        return None
    for name in ("Traceparent", "trace_parent"):
        value = getattr(trace_context, name, None)
        if isinstance(value, str) and value:
            return value
    return None


@contextlib.contextmanager
def operation(
    operation_id: str | None = None, *, traceparent: str | None = None, **dims: Any
) -> Iterator[str]:
    """Run a block under one operation id; yields the id.

    Every record logged inside (through our loggers) carries ``operation_id`` and ``dims``
    (e.g. ``field``, ``blob``, ``etag``, ``event_id``, ``stage``) as custom dimensions, and the
    host's trace id from ``traceparent`` (see :func:`trace_parent_of`) as its operation_Id.
    Nested blocks inherit and extend the outer dimensions.
    """
    outer = _current.get()
    op_id = operation_id or (outer.operation_id if outer else None) or new_operation_id()
    trace_id = span_id = None
    match = _TRACEPARENT.match((traceparent or "").strip().lower())
    if match:
        trace_id, span_id = match.group(1), match.group(2)
    elif outer:
        trace_id, span_id = outer.trace_id, outer.span_id
    merged = {**(outer.dims if outer else {}), **dims}
    token = _current.set(_Operation(op_id, trace_id, span_id, merged))
    try:
        yield op_id
    finally:
        _current.reset(token)


def bind(**dims: Any) -> None:
    """Add dimensions to the current operation (e.g. once the blob name is parsed).

    Without an enclosing :func:`operation` this starts one for the current context.
    """
    outer = _current.get()
    if outer is None:
        _current.set(_Operation(new_operation_id(), None, None, dict(dims)))
    else:
        _current.set(
            _Operation(outer.operation_id, outer.trace_id, outer.span_id, {**outer.dims, **dims})
        )


def current_operation_id() -> str:
    """The current operation id, or "" outside any operation (put it in the queue message)."""
    op = _current.get()
    return op.operation_id if op else ""


def current_dimensions() -> dict[str, Any]:
    """Dimensions of the current operation, ``operation_id`` included."""
    op = _current.get()
    if op is None:
        return {}
    return {**op.dims, "operation_id": op.operation_id}


class _ContextFilter(logging.Filter):
    """Stamps the current operation onto a record: dimensions, and the host's trace/span ids
    that AzureLogHandler turns into ``operation_Id`` / ``operation_ParentId``."""

    def filter(self, record: logging.LogRecord) -> bool:
        op = _current.get()
        own = getattr(record, "custom_dimensions", None)
        own = dict(own) if isinstance(own, Mapping) else {}
        if op is not None:
            record.custom_dimensions = {**op.dims, "operation_id": op.operation_id, **own}
            if op.trace_id and not hasattr(record, "traceId"):
                record.traceId = op.trace_id
                record.spanId = op.span_id
        else:
            record.custom_dimensions = own
        return True


class _NamespaceFilter(logging.Filter):
    """Lets through only our own loggers, never the exporter's (whose warnings about a failed
    send would otherwise be sent again: a feedback loop)."""

    def __init__(self, namespaces: tuple[str, ...]) -> None:
        super().__init__()
        self._namespaces = namespaces

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return any(name == ns or name.startswith(ns + ".") for ns in self._namespaces)


# ---------------------------------------------------------------------------------------------
# Metrics: delta aggregation per export interval
# ---------------------------------------------------------------------------------------------


@dataclass
class _Aggregate:
    name: str
    dims: tuple[tuple[str, str], ...]
    total: float
    count: int
    minimum: float
    maximum: float
    timestamp: datetime


class _DeltaAggregator:
    """Sum/count/min/max per (metric, dimensions) since the last export, then reset.

    It plays OpenCensus' ``MetricProducer`` role (``get_metrics``) for the exporter thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[tuple[str, tuple[tuple[str, str], ...]], _Aggregate] = {}

    def add(self, name: str, value: float, dims: Mapping[str, str]) -> None:
        key = (name, tuple(sorted(dims.items())))
        with self._lock:
            agg = self._data.get(key)
            if agg is None:
                self._data[key] = _Aggregate(
                    name, key[1], value, 1, value, value, datetime.now(UTC)
                )
            else:
                agg.total += value
                agg.count += 1
                agg.minimum = min(agg.minimum, value)
                agg.maximum = max(agg.maximum, value)

    def get_metrics(self) -> list[_Aggregate]:
        with self._lock:
            data, self._data = self._data, {}
        return list(data.values())


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class _State:
    connection_string: str
    handler: Any
    metrics_exporter: Any
    aggregator: _DeltaAggregator
    loggers: tuple[logging.Logger, ...]


class _Runtime:
    """Process-wide telemetry state (one exporter pair per process)."""

    lock = threading.Lock()
    state: _State | None = None
    disabled_for: str | None = None  # the connection string we decided not to use (no-op)


def parse_connection_string(connection_string: str) -> dict[str, str]:
    """Parse an Application Insights connection string; keys lower-cased.

    Tolerates the trailing ``;`` and blanks that OpenCensus' own parser rejects. Raises
    ValueError (without echoing the value, which holds the instrumentation key) when malformed.
    """
    result: dict[str, str] = {}
    for raw_part in connection_string.split(";"):
        part = raw_part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError("APPLICATIONINSIGHTS_CONNECTION_STRING is malformed (key=value;...)")
        result[key.strip().lower()] = value.strip()
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", result.get("instrumentationkey", "")):
        raise ValueError("APPLICATIONINSIGHTS_CONNECTION_STRING has no valid InstrumentationKey")
    return result


def _normalized(connection_string: str) -> str:
    parts = parse_connection_string(connection_string)
    names = {"instrumentationkey": "InstrumentationKey", "ingestionendpoint": "IngestionEndpoint"}
    kept = []
    for key, value in parts.items():
        # The exporter appends "/v2.1/track"; the portal's endpoint value ends with "/".
        clean = value.rstrip("/") if key == "ingestionendpoint" else value
        if key in names or key in ("endpointsuffix", "location", "authorization"):
            kept.append(f"{names.get(key, key)}={clean}")
    return ";".join(kept)


def install_scrubber() -> None:
    """Add :class:`ScrubFilter` to every handler of the root logger (idempotent).

    In Azure the worker's handler sits there and forwards records to the host, which writes
    them to Application Insights itself; scrubbing there covers logs we do not export.
    """
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())


def is_enabled() -> bool:
    """True when telemetry is being exported (a valid connection string was configured)."""
    return _Runtime.state is not None


def configure(
    connection_string: str | None,
    *,
    export_interval_s: float = 60.0,
    timeout_s: float = 10.0,
    enable_local_storage: bool = True,
    storage_path: str | None = None,
    namespaces: tuple[str, ...] = LOGGER_NAMESPACES,
) -> bool:
    """Set up export to Application Insights once; returns whether telemetry is exported.

    Idempotent and cheap after the first call, so every function may call it first thing
    (``configure(settings.appinsights_connection_string)``). An empty or invalid connection
    string leaves telemetry a no-op (a warning names the problem, never the value).

    ``export_interval_s``: seconds between background sends (logs and metrics);
    ``timeout_s``: HTTP timeout of one send, on the exporter's thread, never the caller's;
    ``enable_local_storage``/``storage_path``: retry spool on local disk (default: a temp dir).
    """
    install_scrubber()
    connection_string = (connection_string or "").strip()
    with _Runtime.lock:
        if _Runtime.state is not None and _Runtime.state.connection_string == connection_string:
            return True
        if _Runtime.state is None and _Runtime.disabled_for == connection_string:
            return False
        if _Runtime.state is not None:
            _shutdown_locked(timeout_s=1.0)
        if not connection_string:
            _Runtime.disabled_for = connection_string
            return False
        try:
            normalized = _normalized(connection_string)
        except ValueError as exc:
            logger.warning("telemetry disabled: %s", exc)
            _Runtime.disabled_for = connection_string
            return False
        # Statsbeat is the SDK's own usage telemetry, sent to a Microsoft endpoint that is not
        # ours: an extra thread and outbound connection per cold start. Opt in by setting it.
        os.environ.setdefault("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
        try:
            _Runtime.state = _start_exporters(
                connection_string,
                normalized,
                export_interval_s=export_interval_s,
                timeout_s=timeout_s,
                enable_local_storage=enable_local_storage,
                storage_path=storage_path,
                namespaces=namespaces,
            )
        except Exception as exc:  # telemetry must never take the pipeline down
            logger.warning("telemetry disabled: exporter set-up failed: %s", scrub(str(exc)))
            _Runtime.disabled_for = connection_string
            return False
        _Runtime.disabled_for = None
        return True


def _start_exporters(
    connection_string: str,
    normalized: str,
    *,
    export_interval_s: float,
    timeout_s: float,
    enable_local_storage: bool,
    storage_path: str | None,
    namespaces: tuple[str, ...],
) -> _State:
    # Imported here, not at module level: ~0.3 s (requests, opencensus) off every cold start
    # that has no telemetry, and off `import function_app` always.
    from opencensus.ext.azure.common.protocol import (
        Data,
        DataPoint,
        Envelope,
        MetricData,
    )
    from opencensus.ext.azure.common.utils import azure_monitor_context
    from opencensus.ext.azure.log_exporter import AzureLogHandler
    from opencensus.ext.azure.metrics_exporter import MetricsExporter
    from opencensus.metrics import transport

    options: dict[str, Any] = {
        "connection_string": normalized,
        "export_interval": export_interval_s,
        "timeout": timeout_s,
        "enable_local_storage": enable_local_storage,
        "enable_standard_metrics": False,  # no psutil performance counters: the host has them
    }
    if storage_path is not None:
        options["storage_path"] = storage_path

    class _AggregateExporter(MetricsExporter):
        """OpenCensus' metrics exporter (transport, retry spool), fed pre-aggregated deltas.

        Its own ``metric_to_envelopes`` sends one value per series and cumulative totals;
        this one sends sum/count/min/max of the interval, as Application Insights expects.
        """

        def metric_to_envelopes(self, metric: _Aggregate) -> list[Any]:
            point = DataPoint(
                ns=METRIC_NAMESPACE,
                name=metric.name,
                value=metric.total,
                count=metric.count,
                min=metric.minimum,
                max=metric.maximum,
            )
            envelope = Envelope(
                iKey=self.options.instrumentation_key,
                tags=dict(azure_monitor_context),
                time=metric.timestamp.isoformat(),
            )
            envelope.name = "Microsoft.ApplicationInsights.Metric"
            envelope.data = Data(
                baseData=MetricData(metrics=[point], properties=dict(metric.dims)),
                baseType="MetricData",
            )
            return [envelope]

    handler = AzureLogHandler(**options)
    handler.setLevel(logging.INFO)
    handler.addFilter(_NamespaceFilter(namespaces))
    handler.addFilter(_ContextFilter())
    handler.addFilter(ScrubFilter())
    handler.add_telemetry_processor(_scrub_envelope)

    aggregator = _DeltaAggregator()
    exporter = _AggregateExporter(**options)
    exporter.add_telemetry_processor(_scrub_envelope)
    exporter.exporter_thread = transport.get_exporter_thread(
        [aggregator], exporter, interval=export_interval_s
    )

    loggers = tuple(logging.getLogger(ns) for ns in namespaces)
    for log in loggers:
        if log.level == logging.NOTSET:
            log.setLevel(logging.INFO)  # our structured INFO records are the point
        log.addHandler(handler)
    return _State(connection_string, handler, exporter, aggregator, loggers)


def _scrub_envelope(envelope: Any) -> bool:
    """Last line of defence, on the exporter thread: scrub message and properties."""
    base = getattr(getattr(envelope, "data", None), "baseData", None)
    if base is None:
        return True
    if isinstance(base.get("message"), str):
        base["message"] = scrub(base["message"])
    if isinstance(base.get("properties"), Mapping):
        base["properties"] = scrub_dimensions(base["properties"])
    for exc in base.get("exceptions") or []:
        if isinstance(exc, dict) and isinstance(exc.get("message"), str):
            exc["message"] = scrub(exc["message"])
    return True


def flush(timeout_s: float = 5.0) -> None:
    """Send what is pending now (logs and the current metric interval); waits at most about
    ``timeout_s`` seconds per exporter. For tests, CLIs and the end of a timer run."""
    state = _Runtime.state
    if state is None:
        return
    with contextlib.suppress(Exception):
        state.handler.flush(timeout=timeout_s)
    with contextlib.suppress(Exception):
        state.metrics_exporter.export_metrics(state.aggregator.get_metrics())


def shutdown(timeout_s: float = 5.0) -> None:
    """Flush and stop the exporters, detach the handler; telemetry becomes a no-op again."""
    with _Runtime.lock:
        _shutdown_locked(timeout_s)
        _Runtime.disabled_for = None


def _shutdown_locked(timeout_s: float) -> None:
    state, _Runtime.state = _Runtime.state, None
    if state is None:
        return
    with contextlib.suppress(Exception):
        state.metrics_exporter.export_metrics(state.aggregator.get_metrics())
    exporter = state.metrics_exporter
    with contextlib.suppress(Exception):
        exporter.exporter_thread.cancel()
    # The exporter registered its own shutdown at exit; after ours it would flush a producer
    # that is gone and log a traceback.
    atexit.unregister(exporter.shutdown)
    if exporter.storage is not None:
        with contextlib.suppress(Exception):
            exporter.storage.close()
    for log in state.loggers:
        log.removeHandler(state.handler)
    with contextlib.suppress(Exception):
        state.handler.close(timeout=timeout_s)


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


def track_metric(name: str, value: float, **dims: Any) -> None:
    """Record one observation of a custom metric (see the names at the top of this module).

    Aggregated per export interval and dimension set (sum, count, min, max) into
    ``customMetrics``; a no-op when telemetry is off. Never raises.
    """
    state = _Runtime.state
    if state is None:
        return
    try:
        clean = {k: str(v) for k, v in scrub_dimensions(dims).items() if v is not None}
        state.aggregator.add(name, float(value), clean)
    except Exception:  # a bad value must not break the caller
        logger.debug("metric %s dropped", name, exc_info=True)


def log_event(log: logging.Logger, message: str, level: int = logging.INFO, **dims: Any) -> None:
    """Log ``message`` with ``dims`` as custom dimensions (plus the current operation's)."""
    clean = {key: value for key, value in dims.items() if value is not None}
    log.log(level, message, extra={"custom_dimensions": clean})


def record_started(stage: str, field: str, **dims: Any) -> None:
    """Log that a stage started on a file (``status=started``): a file whose last record is
    this one, long ago, is stuck in that stage (crash, timeout)."""
    log_event(
        logging.getLogger("shared_code.pipeline.stage"),
        f"{stage} started for {field}",
        field=field,
        stage=stage,
        status="started",
        **dims,
    )


def record_stage(
    stage: str,
    field: str,
    *,
    ok: bool,
    seconds: float,
    bytes_in: int | None = None,
    bytes_out: int | None = None,
    samples_in: int | None = None,
    samples_out: int | None = None,
    nonfinite_samples: int | None = None,
    reason: str | None = None,
    **dims: Any,
) -> None:
    """Record a stage's outcome for one file: metrics plus one structured log record.

    ``stage``: ``decimate`` or ``convert``; ``seconds``: wall-clock seconds spent in it;
    ``bytes_*``: bytes read/written; ``samples_*``: samples read/written over all traces;
    ``nonfinite_samples``: NaN/Inf samples left out of the MiniSEED (gaps there);
    ``reason``: why it failed (scrubbed). The log record (``stage finished``/``stage failed``)
    carries the same values as dimensions, so KQL can compute exact percentiles.
    """
    base = {"field": field, "stage": stage}
    track_metric(FILES_PROCESSED if ok else FILES_FAILED, 1, **base)
    track_metric(STAGE_SECONDS, seconds, **base)
    amounts = {
        BYTES_IN: bytes_in,
        BYTES_OUT: bytes_out,
        SAMPLES_IN: samples_in,
        SAMPLES_OUT: samples_out,
        NONFINITE_SAMPLES: nonfinite_samples,
    }
    for metric, amount in amounts.items():
        if amount is not None:
            track_metric(metric, amount, **base)
    log_event(
        logging.getLogger("shared_code.pipeline.stage"),
        f"{stage} {'finished' if ok else 'failed'} for {field}",
        logging.INFO if ok else logging.ERROR,
        **base,
        status="ok" if ok else "failed",
        stage_seconds=round(seconds, 6),
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        samples_in=samples_in,
        samples_out=samples_out,
        nonfinite_samples=nonfinite_samples,
        reason=reason,
        **dims,
    )


def record_end_to_end(
    field: str,
    blob_created: datetime,
    *,
    mseed_files: int = 1,
    visible_at: datetime | None = None,
    **dims: Any,
) -> float:
    """Record MiniSEED made visible for one raw file; returns the latency in seconds.

    Latency runs from the raw blob's creation time (Event Grid ``eventTime`` or the blob's
    ``creation_time``; naive datetimes are taken as UTC) to ``visible_at`` (default: now,
    i.e. call it right after the atomic rename). Sends ``MiniseedFilesWritten`` (value
    ``mseed_files``) and ``EndToEndLatencySeconds``, and logs ``file converted``.
    """
    if blob_created.tzinfo is None:
        blob_created = blob_created.replace(tzinfo=UTC)
    visible = visible_at or datetime.now(UTC)
    if visible.tzinfo is None:
        visible = visible.replace(tzinfo=UTC)
    latency = max(0.0, (visible - blob_created).total_seconds())
    track_metric(MINISEED_FILES_WRITTEN, mseed_files, field=field)
    track_metric(END_TO_END_SECONDS, latency, field=field)
    log_event(
        logging.getLogger("shared_code.pipeline.stage"),
        f"file converted for {field}",
        field=field,
        stage="convert",
        status="converted",
        end_to_end_seconds=round(latency, 3),
        mseed_files=mseed_files,
        **dims,
    )
    return latency


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...``; afterwards ``t[0]`` holds the elapsed seconds."""
    holder = [0.0]
    start = time.perf_counter()
    try:
        yield holder
    finally:
        holder[0] = time.perf_counter() - start
