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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shared_code import formats
from shared_code.dsp import decimate_block
from shared_code.events import BLOB_CREATED, EventError, event_type, parse_blob_created
from shared_code.failures import record_failure
from shared_code.fields import FieldConfig, FieldConfigError, UnknownFieldError, load_fields
from shared_code.messages import (
    ConvertRequest,
    MessageError,
    SourceBlob,
    format_ranges,
    parse_ranges,
)
from shared_code.settings import Settings
from shared_code.share_layout import (
    BlobNameError,
    atomic_writer,
    blob_paths,
    ensure_layout,
    resolve,
)
from shared_code.waveforms import Block, Recording

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
    seed_ids: list[str] = field(default_factory=list)


def decimate_recording(recording: Recording, cfg: FieldConfig, target_rate_hz: float) -> Recording:
    """Select the field's channels and decimate every block to ``target_rate_hz`` (Hz)."""
    blocks: list[Block] = []
    for block in recording.blocks:
        keep = set(cfg.select(max(t.index for t in block.traces) + 1))
        rows = [i for i, t in enumerate(block.traces) if t.index in keep]
        if not rows:
            continue
        if len(rows) != len(block.traces):
            block = Block(
                data=block.data[rows],
                sampling_rate=block.sampling_rate,
                starttime_ns=block.starttime_ns,
                traces=[block.traces[i] for i in rows],
            )
        blocks.append(decimate_block(block, target_rate_hz, mode="extend"))
    if not blocks:
        raise InputError(f"{recording.source}: the field's channel selection keeps no trace")
    return replace(recording, blocks=blocks)


def decimate_file(
    local_path: Path,
    blob_name: str,
    share_root: Path,
    cfg: FieldConfig,
    source: SourceBlob,
    *,
    target_rate_hz: float | None = None,
    operation_id: str = "",
) -> tuple[ConvertRequest, StageReport]:
    """Read a raw file, decimate it and write the decimated file to the share atomically.

    ``blob_name`` (``<field>/...``) names the file in errors and derives the share paths.
    Returns the ConvertRequest for the convert stage and a report.
    """
    started = time.perf_counter()
    paths = blob_paths(blob_name)
    size = local_path.stat().st_size
    if size == 0:
        raise InputError(f"{blob_name}: empty file (0 bytes)")
    recording = formats.read(local_path, name=blob_name)
    target = cfg.target_rate_hz if target_rate_hz is None else target_rate_hz
    decimated = decimate_recording(recording, cfg, target)
    out_format = formats.output_format(decimated)
    relative = paths.decimated(formats.EXTENSIONS[out_format])
    with atomic_writer(share_root, relative) as (_tmp, fh):
        formats.write(decimated, fh, out_format)
    first_in, first_out = recording.blocks[0], decimated.blocks[0]
    integer = all(b.is_integer for b in decimated.blocks)
    indices = [t.index for b in decimated.blocks for t in b.traces]
    report = StageReport(
        blob=blob_name,
        field=cfg.name,
        stage="decimate",
        input_format=recording.format,
        output_format=out_format,
        traces=decimated.n_traces,
        input_rate_hz=first_in.sampling_rate,
        output_rate_hz=first_out.sampling_rate,
        samples_in=recording.n_samples,
        samples_out=decimated.n_samples,
        duration_s=max(b.n_samples / b.sampling_rate for b in recording.blocks),
        bytes_in=size,
        bytes_out=resolve(share_root, relative).stat().st_size,
        seconds=time.perf_counter() - started,
        output_path=relative,
        passthrough=first_in.sampling_rate <= target,
    )
    if report.passthrough:
        log.info(
            "%s: input rate %s Hz is at or below the target %s Hz: passed through unchanged",
            blob_name, first_in.sampling_rate, target,
        )  # fmt: skip
    request = ConvertRequest(
        field=cfg.name,
        decimated_path=relative,
        file_type=out_format,
        sampling_rate_hz=first_out.sampling_rate,
        integer_counts=integer,
        source=source,
        operation_id=operation_id,
        trace_indices="" if indices == list(range(len(indices))) else format_ranges(indices),
    )
    return request, report


def convert_file(request: ConvertRequest, share_root: Path, cfg: FieldConfig) -> StageReport:
    """Turn a decimated file into MiniSEED (512-byte records) under ``mseed/``, atomically.

    Every trace gets its SEED id from the field configuration; integer counts are written
    Steim-2, floats as 32-bit float records.
    """
    started = time.perf_counter()
    paths = blob_paths(request.source.name)
    decimated_path = resolve(share_root, request.decimated_path)
    if not decimated_path.is_file():
        raise FileNotFoundError(f"{request.source.name}: decimated file {request.decimated_path} not found")
    recording = formats.read(decimated_path, name=request.decimated_path)
    if request.trace_indices:
        indices = parse_ranges(request.trace_indices)
        traces = [t for b in recording.blocks for t in b.traces]
        if len(indices) != len(traces):
            raise InputError(
                f"{request.source.name}: decimated file has {len(traces)} traces, the message "
                f"names {len(indices)}"
            )
        for trace, index in zip(traces, indices, strict=True):
            trace.index = index
    seed_ids: list[str] = []
    for block in recording.blocks:
        for trace in block.traces:
            sid = cfg.seed_id(trace, block.sampling_rate)
            trace.network, trace.station, trace.location, trace.channel = sid.split(".")
            seed_ids.append(sid)
    if len(set(seed_ids)) != len(seed_ids) and len({b.starttime_ns for b in recording.blocks}) == 1:
        dupes = sorted({s for s in seed_ids if seed_ids.count(s) > 1})[:5]
        raise InputError(f"{request.source.name}: traces map to the same SEED id: {dupes}")
    with atomic_writer(share_root, paths.mseed) as (_tmp, fh):
        formats.write(recording, fh, "MSEED")
    first = recording.blocks[0]
    return StageReport(
        blob=request.source.name,
        field=cfg.name,
        stage="convert",
        input_format=recording.format,
        output_format="MSEED",
        traces=recording.n_traces,
        input_rate_hz=first.sampling_rate,
        output_rate_hz=first.sampling_rate,
        samples_in=recording.n_samples,
        samples_out=recording.n_samples,
        duration_s=max(b.n_samples / b.sampling_rate for b in recording.blocks),
        bytes_in=decimated_path.stat().st_size,
        bytes_out=resolve(share_root, paths.mseed).stat().st_size,
        seconds=time.perf_counter() - started,
        output_path=paths.mseed,
        seed_ids=sorted(set(seed_ids)),
    )


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PERMANENT_ERRORS):
        return False
    try:
        from azure.core.exceptions import AzureError
    except ImportError:  # pragma: no cover - azure-core is a runtime dependency
        return isinstance(exc, OSError)
    return isinstance(exc, AzureError | OSError)


def handle_blob_created(payload: dict[str, Any], settings: Settings) -> StageReport | None:
    """The decimate trigger's work: a BlobCreated event (either schema) in, a message out.

    Returns None when the event is not one to process (another type, a superseded version);
    returns the report on success; records a failure and returns None for bad input; records
    and re-raises transient errors so that Event Grid retries.
    """
    from shared_code.storage import BlobChangedError, convert_queue, download_blob

    kind = event_type(payload)
    if kind != BLOB_CREATED:
        log.info("event %s of type %r ignored: not %s", payload.get("id"), kind, BLOB_CREATED)
        return None
    blob = str(payload.get("subject") or payload.get("id") or "?")
    etag = field_name = ""
    try:
        event = parse_blob_created(payload)
        blob, etag = event.blob_name, event.etag
        if event.container != settings.raw_container:
            raise InputError(
                f"blob {event.container}/{event.blob_name}: outside the raw container "
                f"{settings.raw_container!r}"
            )
        field_name = blob_paths(event.blob_name).blob.field
        cfg = load_fields(settings.fields_config).get(field_name)
        if event.content_length == 0:
            raise InputError(f"{event.blob_name}: empty blob (0 bytes)")
        ensure_layout(settings.share_root)
        source = SourceBlob(
            url=event.url, container=event.container, name=event.blob_name, etag=event.etag,
            event_id=event.id, event_time=event.time,
        )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="ccs-") as tmp:
            local = Path(tmp) / "raw"
            try:
                download_blob(settings, event.container, event.blob_name, event.etag, local)
            except BlobChangedError as exc:
                log.info("%s: skipped, a newer version has its own event", exc)
                return None
            request, report = decimate_file(
                local, event.blob_name, settings.share_root, cfg, source, operation_id=event.id
            )
        convert_queue(settings).send_message(request.to_json())
        log.info(
            "decimated %s: %d traces %s Hz -> %s Hz, %s -> %s, queued for convert",
            blob, report.traces, report.input_rate_hz, report.output_rate_hz,
            report.input_format, report.output_path,
        )  # fmt: skip
        return report
    except Exception as exc:
        transient = _is_transient(exc)
        if not isinstance(exc, PERMANENT_ERRORS) and not transient:
            log.exception("decimate %s: unexpected error", blob)
        reason = str(exc) if isinstance(exc, PERMANENT_ERRORS) else f"{type(exc).__name__}: {exc}"
        record_failure(
            settings.share_root, stage="decimate", reason=reason, blob=blob, etag=etag,
            field=field_name, event=payload, permanent=not transient,
        )  # fmt: skip
        if transient:
            raise
        return None


def handle_convert_message(body: str, settings: Settings) -> StageReport:
    """The convert trigger's work: a ConvertRequest in, MiniSEED on the share.

    Every failure is recorded and re-raised: the queue retries it and, after
    ``maxDequeueCount``, the host moves it to the poison queue; nothing is half-written.
    """
    blob = ""
    etag = field_name = ""
    try:
        request = ConvertRequest.from_json(body)
        blob, etag, field_name = request.source.name, request.source.etag, request.field
        cfg = load_fields(settings.fields_config).get(request.field)
        report = convert_file(request, settings.share_root, cfg)
        log.info(
            "converted %s: %d traces, %d SEED ids -> %s",
            blob, report.traces, len(report.seed_ids), report.output_path,
        )  # fmt: skip
        return report
    except Exception as exc:
        reason = str(exc) if isinstance(exc, PERMANENT_ERRORS) else f"{type(exc).__name__}: {exc}"
        record_failure(
            settings.share_root, stage="convert", reason=reason, blob=blob or "(unparsed message)",
            etag=etag, field=field_name, message=body, permanent=not _is_transient(exc),
        )  # fmt: skip
        raise
