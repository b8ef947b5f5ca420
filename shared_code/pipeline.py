"""The triggers' work around the two stages, independent of the Functions host.

``handle_blob_created`` and ``handle_convert_message`` wrap the stages of
:mod:`shared_code.stages` (``decimate_file``, ``convert_file``) with what the triggers add:
the ledger row, reading the blob, enqueuing the message, recording failures; ``redrive_blob``
and ``replay_failure_record`` run them again for the operators' tools.

Failure policy: bad input (a permanent error: retrying cannot help) is recorded on the share
under ``failed/`` and in the ledger row, and the trigger returns normally, so neither Event Grid
nor the queue retries it; a transient error (storage or share unreachable, share full or
read-only) is recorded too and re-raised so the platform retries it. The two records are
written independently: a share that refuses the failure record (ENOSPC, EROFS) does not stop the
ledger row from being marked failed, with the event or message kept in the row so it stays
replayable. A blob deleted before it was read is neither: its row says ``deleted`` and nothing
retries it. The raw blob is only ever read.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared_code import telemetry
from shared_code.events import BLOB_CREATED, event_type, parse_blob_created
from shared_code.failures import record_failure
from shared_code.fields import (
    load_fields,
)
from shared_code.messages import (
    ConvertRequest,
    MessageError,
    SourceBlob,
)
from shared_code.settings import Settings
from shared_code.share_layout import (
    STAGING,
    blob_paths,
    ensure_layout,
    resolve,
)
from shared_code.stages import (
    PERMANENT_ERRORS,
    InputError,
    StageReport,
    convert_file,
    decimate_file,
)
from shared_code.staging import keep_alive

log = logging.getLogger(__name__)


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
    from shared_code.storage import (
        BlobChangedError,
        BlobDeletedError,
        convert_queue,
        download_blob,
    )

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
            with (
                tempfile.TemporaryDirectory(prefix="spool-", dir=spool_dir) as tmp,
                keep_alive(Path(tmp)),  # never taken for an orphan while it runs
            ):
                local = Path(tmp) / "raw"
                try:
                    download_blob(settings, event.container, event.blob_name, event.etag, local)
                except BlobChangedError as exc:
                    log.info("%s: skipped, a newer version has its own event", exc)
                    ledger.mark_superseded(field_name, blob, etag)
                    return None
                except BlobDeletedError as exc:
                    # Permanent: no version is left to read, so no retry can help.
                    log.warning("%s", exc)
                    ledger.mark_source_deleted(field_name, blob, etag, str(exc))
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
        """Record ``exc``; returns True if the platform should retry: ``exc`` is transient, or
        neither the share nor the ledger could record it.

        The share record and the ledger row are written independently, each guarded, because
        the failing resource may be one of them (a full or read-only share, an unreachable
        table): the one that works still records the failure."""
        transient = _is_transient(exc)
        reason = _reason(exc)
        path = ""
        try:
            path = record_failure(
                settings.share_root, stage=self.stage, reason=reason, blob=self.blob,
                etag=self.etag, field=self.field_name, event=event, message=message,
                permanent=not transient,
            )  # fmt: skip
        except Exception as share_exc:
            log.warning("%s failure of %s: no record on the share: %s: %s", self.stage,
                        self.blob, type(share_exc).__name__, share_exc)  # fmt: skip
            reason = f"{reason} (failure record not written to the share: {_reason(share_exc)})"
        marked = False
        if self.ledger is not None and self.field_name:
            try:
                self.ledger.mark_failed(
                    self.field_name, self.blob, self.etag, stage=self.stage, reason=reason,
                    failure_path=path, event=event, message=message, permanent=not transient,
                )  # fmt: skip
                marked = True
            except Exception:
                log.warning(
                    "ledger unreachable: %s failure of %s not marked", self.stage, self.blob
                )
        telemetry.record_stage(
            self.stage, self.field_name or "unknown", ok=False,
            seconds=time.perf_counter() - self.started, reason=reason, failure_path=path,
        )  # fmt: skip
        return transient or not (path or marked)


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
    from shared_code.etags import canonical_etag
    from shared_code.events import make_event_grid_event
    from shared_code.storage import blob_service

    service = blob_service(settings.storage)
    props = service.get_blob_client(settings.raw_container, blob_name).get_blob_properties()
    event = make_event_grid_event(
        account_url=service.url, container=settings.raw_container, blob_name=blob_name,
        etag=canonical_etag(props.etag), content_length=int(props.size),
        event_time=props.creation_time,
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
