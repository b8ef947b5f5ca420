"""The two stages of the pipeline, independent of the Functions host.

``decimate_file`` and ``convert_file`` do the work on local paths and the share; they are what
the CLI calls. ``handle_blob_created`` and ``handle_convert_message`` wrap them with what the
triggers add: reading the blob, enqueuing the message, recording failures.

Failure policy: bad input (a permanent error: retrying cannot help) is recorded on the share
under ``failed/`` and the trigger returns normally, so neither Event Grid nor the queue retries
it; a transient error (storage or share unreachable) is recorded too and re-raised so the
platform retries it. The raw blob is only ever read.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np

from shared_code import formats, telemetry
from shared_code.decimation_job import CHUNK_BYTES, plan_file, run_jobs
from shared_code.events import BLOB_CREATED, EventError, event_type, parse_blob_created
from shared_code.failures import record_failure
from shared_code.fields import (
    FieldConfig,
    FieldConfigError,
    SeedIdError,
    UnknownFieldError,
    load_fields,
)
from shared_code.formats import compression
from shared_code.messages import (
    ConvertRequest,
    MessageError,
    SourceBlob,
    format_ranges,
    parse_ranges,
)
from shared_code.settings import Settings
from shared_code.share_layout import (
    STAGING,
    BlobNameError,
    atomic_writer,
    blob_paths,
    ensure_layout,
    resolve,
)
from shared_code.waveforms import TraceMeta

log = logging.getLogger(__name__)

#: Errors that describe the input, not the platform: recorded, never retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    formats.FormatError,
    BlobNameError,
    UnknownFieldError,
    FieldConfigError,
    EventError,
    MessageError,
)


class InputError(ValueError):
    """Bad input that is not a format problem (empty blob, wrong container, ...)."""


PERMANENT_ERRORS = (*PERMANENT_ERRORS, InputError)


@dataclass
class StageReport:
    """What one stage did to one file: for the summary, the logs and the metrics."""

    blob: str
    field: str
    stage: str
    input_format: str = ""
    output_format: str = ""
    traces: int = 0
    input_rate_hz: float = 0.0
    output_rate_hz: float = 0.0
    samples_in: int = 0
    samples_out: int = 0
    duration_s: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    output_path: str = ""
    passthrough: bool = False
    #: How the input was compressed for transfer (``gzip``, ``bzip2``, ``xz``, ``zip``), or "".
    compression: str = ""
    seed_ids: list[str] = dataclass_field(default_factory=list)
    #: NaN/Inf samples left out of the MiniSEED, and the stretches (gaps) they made there.
    nonfinite_samples: int = 0
    gaps: int = 0


def decimate_file(
    local_path: Path,
    blob_name: str,
    share_root: Path,
    cfg: FieldConfig,
    source: SourceBlob,
    *,
    target_rate_hz: float | None = None,
    operation_id: str = "",
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[ConvertRequest, StageReport]:
    """Decimate a raw file in bounded memory and write the decimated file to the share.

    ``blob_name`` (``<field>/...``) names the file in errors and derives the share paths;
    ``target_rate_hz`` (Hz) overrides the field's rate; ``chunk_bytes`` bounds the working
    memory. The outputs near the file's boundaries join seamlessly with its neighbours (see
    :mod:`shared_code.seams`). Returns the ConvertRequest for the convert stage and a report.
    """
    started = time.perf_counter()
    paths = blob_paths(blob_name)
    size = local_path.stat().st_size
    if size == 0:
        raise InputError(f"{blob_name}: empty file (0 bytes)")
    target = cfg.target_rate_hz if target_rate_hz is None else target_rate_hz
    owner = f"{blob_name}@{source.etag}"
    # A compressed upload is decompressed beside the raw spool, on the share's staging area.
    with (
        compression.decompressed(local_path, blob_name, share_root / STAGING) as (readable, how),
        formats.open_source(readable, name=blob_name) as src,
    ):
        input_format = src.format
        # Before any work or state on the share (seam edges): a trace SeisComP would not
        # serve is refused here, not after the file was decimated.
        check_seed_ids(blob_name, src.blocks, cfg, target)
        jobs = [j for j in plan_file(src, cfg, target, share_root, owner) if j.n_samples > 0]
        if not jobs:
            raise InputError(f"{blob_name}: the field's channel selection keeps no trace")
        layout = formats.Layout(
            format_source=src.format,
            source=blob_name,
            file_headers=src.file_headers,
            blocks=[job.layout() for job in jobs],
        )
        out_format = formats.output_format_for(layout)
        relative = paths.decimated(formats.EXTENSIONS[out_format])
        with (
            atomic_writer(share_root, relative) as (_tmp, fh),
            formats.open_writer(out_format, fh, layout, intermediate=True) as writer,
        ):
            run_jobs(jobs, writer, chunk_bytes)
        duration = max(b.n_samples / b.sampling_rate for b in src.blocks)
    first = jobs[0]
    passthrough = all(job.passthrough for job in jobs)
    report = StageReport(
        blob=blob_name,
        field=cfg.name,
        stage="decimate",
        input_format=input_format,
        output_format=out_format,
        traces=sum(len(job.rows) for job in jobs),
        input_rate_hz=first.source.sampling_rate,
        output_rate_hz=first.sampling_rate,
        samples_in=sum(len(job.rows) * job.source.n_samples for job in jobs),
        samples_out=sum(len(job.rows) * job.n_samples for job in jobs),
        duration_s=duration,
        bytes_in=size,
        bytes_out=resolve(share_root, relative).stat().st_size,
        seconds=time.perf_counter() - started,
        output_path=relative,
        passthrough=passthrough,
        compression=how or "",
    )
    if passthrough:
        log.info(
            "%s: input rate %s Hz is at or below the target %s Hz: passed through unchanged",
            blob_name, first.source.sampling_rate, target,
        )  # fmt: skip
    indices = [t.index for job in jobs for t in job.traces]
    request = ConvertRequest(
        field=cfg.name,
        decimated_path=relative,
        file_type=out_format,
        sampling_rate_hz=first.sampling_rate,
        integer_counts=all(job.dtype.kind in "iu" for job in jobs),
        source=source,
        operation_id=operation_id,
        trace_indices="" if indices == list(range(len(indices))) else format_ranges(indices),
    )
    return request, report


def check_seed_ids(blob_name: str, blocks: list[Any], cfg: FieldConfig, target_hz: float) -> None:
    """Raise :class:`SeedIdError` naming the blob if a trace the field's channel selection
    keeps has no SEED id in the field's configuration (and so in SeisComP's bindings).

    Whether a trace has an id does not depend on the rate (Hz): only its band code does.
    """
    channels: dict[str, dict[int, TraceMeta]] = {}
    for block in blocks:
        keep = set(cfg.select(max(t.index for t in block.traces) + 1))
        rate = min(block.sampling_rate, target_hz)  # at or below the target: passed through
        for trace in block.traces:
            if trace.index in keep:
                sid = _seed_id(blob_name, cfg, trace, rate)
                channels.setdefault(sid, {}).setdefault(trace.index, trace)
    _refuse_collisions(blob_name, channels)


def _refuse_collisions(blob_name: str, channels: dict[str, dict[int, TraceMeta]]) -> None:
    """Two input channels (channel numbers) that would share one SEED id: refused, never
    mixed into one stream (segments of one channel share their number and their id)."""
    for sid, by_number in channels.items():
        if len(by_number) > 1:
            first, second = list(by_number.values())[:2]
            raise InputError(
                f"{blob_name}: input channels {_input_id(first)} and {_input_id(second)} would "
                f"both become SEED id {sid}; map them apart in the field configuration "
                "(key 'station_map', 'components' or 'channels')"
            )


def _input_id(trace: TraceMeta) -> str:
    codes = (trace.network, trace.station, trace.location, trace.channel)
    return ".".join(codes) if any(codes) else f"#{trace.index}"


def _seed_id(blob_name: str, cfg: FieldConfig, trace: TraceMeta, rate_hz: float) -> str:
    try:
        return cfg.seed_id(trace, rate_hz)
    except SeedIdError as exc:
        raise SeedIdError(f"{blob_name}: {exc}") from None


def _seed_traces(
    request: ConvertRequest, blocks: list[Any], cfg: FieldConfig
) -> tuple[list[list[TraceMeta]], list[str]]:
    """Per block, copies of the traces carrying their SEED codes; and all SEED ids."""
    indices = parse_ranges(request.trace_indices) if request.trace_indices else None
    total = sum(len(b.traces) for b in blocks)
    if indices is not None and len(indices) != total:
        raise InputError(
            f"{request.source.name}: decimated file has {total} traces, the message "
            f"names {len(indices)}"
        )
    seeded: list[list[TraceMeta]] = []
    seed_ids: list[str] = []
    channels: dict[str, dict[int, TraceMeta]] = {}
    position = 0
    for block in blocks:
        out = []
        for trace in block.traces:
            index = indices[position] if indices is not None else trace.index
            position += 1
            renumbered = trace if index == trace.index else replace(trace, index=index)
            sid = _seed_id(request.source.name, cfg, renumbered, block.sampling_rate)
            channels.setdefault(sid, {}).setdefault(index, renumbered)
            net, sta, loc, cha = sid.split(".")
            out.append(TraceMeta(index=index, network=net, station=sta, location=loc, channel=cha))
            seed_ids.append(sid)
        seeded.append(out)
    _refuse_collisions(request.source.name, channels)
    per_start: dict[int, list[str]] = {}
    for block, traces in zip(blocks, seeded, strict=True):
        per_start.setdefault(block.starttime_ns, []).extend(
            f"{t.network}.{t.station}.{t.location}.{t.channel}" for t in traces
        )
    for ids in per_start.values():
        if len(set(ids)) != len(ids):
            dupes = sorted({s for s in ids if ids.count(s) > 1})[:5]
            raise InputError(f"{request.source.name}: traces map to the same SEED id: {dupes}")
    return seeded, seed_ids


def convert_file(
    request: ConvertRequest, share_root: Path, cfg: FieldConfig, chunk_bytes: int = CHUNK_BYTES
) -> StageReport:
    """Turn a decimated file into MiniSEED (512-byte records) under ``mseed/``, atomically,
    streaming in chunks of traces.

    Every trace gets its SEED id from the field configuration; integer counts are written
    Steim-2, floats as 32-bit float records. NaN/Inf samples are left out (gaps; see
    :mod:`shared_code.formats.mseed`), counted in the report's ``nonfinite_samples`` and ``gaps``.
    """
    started = time.perf_counter()
    paths = blob_paths(request.source.name)
    decimated_path = resolve(share_root, request.decimated_path)
    if not decimated_path.is_file():
        raise FileNotFoundError(
            f"{request.source.name}: decimated file {request.decimated_path} not found"
        )
    with formats.open_source(decimated_path, name=request.decimated_path) as src:
        seeded, seed_ids = _seed_traces(request, src.blocks, cfg)
        layout = formats.Layout(
            format_source=src.format,
            source=request.decimated_path,
            file_headers={},
            blocks=[
                formats.BlockLayout(
                    traces=traces,
                    sampling_rate=b.sampling_rate,
                    starttime_ns=b.starttime_ns,
                    n_samples=b.n_samples,
                    dtype=np.dtype(np.int32 if b.is_integer else np.float32),
                )
                for b, traces in zip(src.blocks, seeded, strict=True)
            ],
        )
        with (
            atomic_writer(share_root, paths.mseed) as (_tmp, fh),
            formats.open_writer("MSEED", fh, layout) as writer,
        ):
            for index, block in enumerate(src.blocks):
                step = max(1, chunk_bytes // max(1, block.n_samples * 8))
                for c0 in range(0, len(block.traces), step):
                    c1 = min(len(block.traces), c0 + step)
                    # As stored (the writer converts a few rows at a time as it packs).
                    data = block.stored_rows(c0, c1)
                    if data.dtype.itemsize != 4:
                        data = data.astype(np.int32 if block.is_integer else np.float32)
                    writer.write_rows(index, c0, data)
        nonfinite = (
            (writer.nonfinite_samples, writer.gaps)
            if isinstance(writer, formats.mseed.MseedWriter)
            else (0, 0)
        )
        n_traces = sum(len(b.traces) for b in src.blocks)
        n_samples = sum(len(b.traces) * b.n_samples for b in src.blocks)
        first_rate = src.blocks[0].sampling_rate
        duration = max(b.n_samples / b.sampling_rate for b in src.blocks)
        file_format = src.format
    return StageReport(
        blob=request.source.name,
        field=cfg.name,
        stage="convert",
        input_format=file_format,
        output_format="MSEED",
        traces=n_traces,
        input_rate_hz=first_rate,
        output_rate_hz=first_rate,
        samples_in=n_samples,
        samples_out=n_samples - nonfinite[0],
        duration_s=duration,
        bytes_in=decimated_path.stat().st_size,
        bytes_out=resolve(share_root, paths.mseed).stat().st_size,
        seconds=time.perf_counter() - started,
        output_path=paths.mseed,
        seed_ids=sorted(set(seed_ids)),
        nonfinite_samples=nonfinite[0],
        gaps=nonfinite[1],
    )


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PERMANENT_ERRORS):
        return False
    try:
        from azure.core.exceptions import AzureError
    except ImportError:  # pragma: no cover - azure-core is a runtime dependency
        return isinstance(exc, OSError)
    return isinstance(exc, AzureError | OSError)


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, PERMANENT_ERRORS) else f"{type(exc).__name__}: {exc}"


def handle_blob_created(
    payload: dict[str, Any],
    settings: Settings,
    *,
    traceparent: str | None = None,
    redrive: bool = False,
) -> StageReport | None:
    """The decimate trigger's work: a BlobCreated event (either schema) in, a message out.

    Returns None when there is nothing to do (another event type, a duplicate delivery of a
    version the ledger shows finished or in progress, a superseded version); the report on
    success. Bad input is recorded (share + ledger) and returns None; transient errors are
    recorded and re-raised so that Event Grid retries. ``redrive`` (replay, reconciliation)
    processes a finished version again.
    """
    from shared_code.ledger import Ledger
    from shared_code.storage import BlobChangedError, convert_queue, download_blob

    telemetry.configure(settings.appinsights_connection_string)
    kind = event_type(payload)
    event_id = str(payload.get("id") or "")
    if kind != BLOB_CREATED:
        log.info("event %s of type %r ignored: not %s", event_id, kind, BLOB_CREATED)
        return None
    blob = str(payload.get("subject") or event_id or "?")
    etag = field_name = ""
    ledger: Ledger | None = None
    started = time.perf_counter()
    with telemetry.operation(event_id or None, traceparent=traceparent, stage="decimate",
                             event_id=event_id) as operation_id:  # fmt: skip
        try:
            event = parse_blob_created(payload)
            blob, etag = event.blob_name, event.etag
            telemetry.bind(blob=blob, etag=etag)
            if event.is_empty_placeholder:
                log.info(
                    "%s: Data Lake CreateFile ignored; FlushWithClose brings the content", blob
                )
                return None
            if event.container != settings.raw_container:
                raise InputError(
                    f"blob {event.container}/{event.blob_name}: outside the raw container "
                    f"{settings.raw_container!r}"
                )
            field_name = blob_paths(event.blob_name).blob.field
            telemetry.bind(field=field_name)
            # From here on the ledger gets a row, also for an unknown field: once the field
            # is configured, `cli replay --failed` finds it there.
            ledger = Ledger.from_settings(settings)
            cfg = load_fields(settings.fields_config).get(field_name)
            claimed = ledger.begin(
                field_name, blob, etag, event_id=event.id, event_time=event.time, url=event.url,
                redrive=redrive, operation_id=operation_id,
            )  # fmt: skip
            if not claimed:
                log.info(
                    "%s (ETag %s): duplicate delivery, already done or in progress", blob, etag
                )
                return None
            telemetry.record_started("decimate", field_name)
            if event.content_length == 0:
                raise InputError(f"{event.blob_name}: empty blob (0 bytes)")
            ensure_layout(settings.share_root)
            source = SourceBlob(
                url=event.url, container=event.container, name=event.blob_name, etag=event.etag,
                event_id=event.id, event_time=event.time,
            )  # fmt: skip
            # The blob is spooled to the share, not to the instance's small local disk and
            # never into memory: a multi-GB file is then read in bounded chunks.
            spool_dir = settings.share_root / STAGING
            with tempfile.TemporaryDirectory(prefix="spool-", dir=spool_dir) as tmp:
                local = Path(tmp) / "raw"
                try:
                    download_blob(settings, event.container, event.blob_name, event.etag, local)
                except BlobChangedError as exc:
                    log.info("%s: skipped, a newer version has its own event", exc)
                    ledger.mark_superseded(field_name, blob, etag)
                    return None
                request, report = decimate_file(
                    local, event.blob_name, settings.share_root, cfg, source,
                    operation_id=operation_id,
                )  # fmt: skip
            convert_queue(settings).send_message(request.to_json())
            # Only now: a crash before the message is sent leaves "received", and the lease
            # expiry lets a retry or the reconciliation do it again.
            ledger.mark_decimated(field_name, blob, etag, report.output_path)
            telemetry.record_stage(
                "decimate", field_name, ok=True, seconds=time.perf_counter() - started,
                bytes_in=report.bytes_in, bytes_out=report.bytes_out,
                samples_in=report.samples_in, samples_out=report.samples_out,
                traces=report.traces, input_format=report.input_format,
                output_format=report.output_format, compression=report.compression,
            )  # fmt: skip
            log.info(
                "decimated %s: %d traces %s Hz -> %s Hz, %s%s -> %s, queued for convert",
                blob, report.traces, report.input_rate_hz, report.output_rate_hz,
                report.input_format,
                f" ({report.compression}-compressed)" if report.compression else "",
                report.output_path,
            )  # fmt: skip
            return report
        except Exception as exc:
            if not isinstance(exc, PERMANENT_ERRORS) and not _is_transient(exc):
                log.exception("decimate %s: unexpected error", blob)
            failure = _Failure("decimate", blob, etag, field_name, ledger, started)
            if failure.record(settings, exc, event=payload):
                raise
            return None


@dataclass
class _Failure:
    """Where one stage's failure of one file goes: share, ledger, telemetry."""

    stage: str
    blob: str
    etag: str
    field_name: str
    ledger: Any
    started: float

    def record(
        self,
        settings: Settings,
        exc: BaseException,
        *,
        event: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> bool:
        """Record ``exc``; returns True if it is transient (the platform should retry)."""
        transient = _is_transient(exc)
        reason = _reason(exc)
        path = record_failure(
            settings.share_root, stage=self.stage, reason=reason, blob=self.blob,
            etag=self.etag, field=self.field_name, event=event, message=message,
            permanent=not transient,
        )  # fmt: skip
        if self.ledger is not None and self.field_name:
            try:
                self.ledger.mark_failed(
                    self.field_name, self.blob, self.etag, stage=self.stage, reason=reason,
                    failure_path=path,
                )  # fmt: skip
            except Exception:
                # The failure record on the share holds it; the ledger may be what is down.
                log.warning(
                    "ledger unreachable: %s failure of %s not marked", self.stage, self.blob
                )
        telemetry.record_stage(
            self.stage, self.field_name or "unknown", ok=False,
            seconds=time.perf_counter() - self.started, reason=reason, failure_path=path,
        )  # fmt: skip
        return transient


def handle_convert_message(
    body: str, settings: Settings, *, traceparent: str | None = None
) -> StageReport:
    """The convert trigger's work: a ConvertRequest in, MiniSEED on the share.

    Every failure is recorded and re-raised: the queue retries it and, after
    ``maxDequeueCount``, the host moves it to the poison queue; nothing is half-written.
    """
    from datetime import datetime

    from shared_code.ledger import Ledger

    telemetry.configure(settings.appinsights_connection_string)
    blob = etag = field_name = ""
    ledger: Ledger | None = None
    started = time.perf_counter()
    operation_id: str | None = None
    try:
        request = ConvertRequest.from_json(body)
        operation_id = request.operation_id or request.source.event_id
    except MessageError:
        request = None
    with telemetry.operation(operation_id, traceparent=traceparent, stage="convert"):
        try:
            if request is None:
                request = ConvertRequest.from_json(body)
            blob, etag, field_name = request.source.name, request.source.etag, request.field
            telemetry.bind(field=field_name, blob=blob, etag=etag, event_id=request.source.event_id)
            cfg = load_fields(settings.fields_config).get(request.field)
            ledger = Ledger.from_settings(settings)
            telemetry.record_started("convert", field_name)
            report = convert_file(request, settings.share_root, cfg)
            ledger.mark_converted(field_name, blob, etag, [report.output_path])
            telemetry.record_stage(
                "convert", field_name, ok=True, seconds=time.perf_counter() - started,
                bytes_in=report.bytes_in, bytes_out=report.bytes_out,
                samples_in=report.samples_in, samples_out=report.samples_out,
                seed_ids=len(report.seed_ids), nonfinite_samples=report.nonfinite_samples,
                gaps=report.gaps,
            )  # fmt: skip
            created = request.source.event_time
            if created:
                telemetry.record_end_to_end(field_name, datetime.fromisoformat(created))
            log.info(
                "converted %s: %d traces, %d SEED ids -> %s",
                blob, report.traces, len(report.seed_ids), report.output_path,
            )  # fmt: skip
            return report
        except Exception as exc:
            failure = _Failure("convert", blob or "(unparsed message)", etag, field_name, ledger,
                               started)  # fmt: skip
            failure.record(settings, exc, message=body)
            raise


def redrive_blob(settings: Settings, blob_name: str) -> StageReport | None:
    """Process a raw blob again, as if its BlobCreated event had just arrived.

    Builds the same event Azure Storage would publish from the blob's current properties;
    the ledger lets it through even if that version finished before (replay, reconciliation).
    """
    from shared_code.events import make_event_grid_event
    from shared_code.storage import blob_service

    service = blob_service(settings.storage)
    props = service.get_blob_client(settings.raw_container, blob_name).get_blob_properties()
    event = make_event_grid_event(
        account_url=service.url, container=settings.raw_container, blob_name=blob_name,
        etag=str(props.etag), content_length=int(props.size), event_time=props.creation_time,
        event_id=f"redrive-{uuid.uuid4()}",
    )  # fmt: skip
    return handle_blob_created(event, settings, redrive=True)


def replay_failure_record(settings: Settings, relative: str) -> str:
    """Replay one failure record from ``failed/``: its event through decimate (as a re-drive),
    or its queue message back onto the convert queue. Returns what was done."""
    import json

    from shared_code.storage import convert_queue

    record = json.loads(resolve(settings.share_root, relative).read_text())
    if record.get("event"):
        report = handle_blob_created(record["event"], settings, redrive=True)
        if report is None:
            return "event replayed, not decimated (see failed/ and the ledger)"
        return f"event replayed: decimated to {report.output_path}, queued for convert"
    if record.get("message"):
        convert_queue(settings).send_message(record["message"])
        return "queue message re-sent to the convert queue"
    raise InputError(f"{relative}: failure record holds neither an event nor a queue message")
