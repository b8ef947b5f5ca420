"""Blob-created events, in the Event Grid schema and the CloudEvents 1.0 schema.

The trigger module turns the host's event object into a plain dict in the event's own wire
schema; :func:`parse_blob_created` reads either schema into one :class:`BlobCreatedEvent`.
:func:`make_event_grid_event` builds the same payload that Azure Storage publishes, for
replay, reconciliation and the local run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from shared_code.etags import canonical_etag

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
_SUBJECT_PREFIX = "/blobServices/default/containers/"


class EventError(ValueError):
    """An event that is not a usable BlobCreated event; the message says why."""


@dataclass(frozen=True)
class BlobCreatedEvent:
    """What the pipeline needs from a BlobCreated event."""

    id: str
    time: str
    container: str
    blob_name: str
    url: str
    etag: str
    content_length: int | None
    schema: str
    payload: dict[str, Any]
    api: str = ""

    @property
    def is_empty_placeholder(self) -> bool:
        """A Data Lake ``CreateFile``: an empty file whose content a later ``FlushWithClose``
        (its own BlobCreated event) brings."""
        return self.api == "CreateFile"


def event_type(payload: dict[str, Any]) -> str:
    """The event's type in either schema ('' if it has none)."""
    return str(payload.get("type") or payload.get("eventType") or "")


def parse_blob_created(payload: dict[str, Any]) -> BlobCreatedEvent:
    """Read a BlobCreated event in the Event Grid or CloudEvents schema.

    Raises EventError for another event type or a payload without subject/url.
    """
    cloud = "specversion" in payload
    kind = event_type(payload)
    if kind != BLOB_CREATED:
        raise EventError(f"event {payload.get('id')!r} has type {kind!r}, not {BLOB_CREATED}")
    data = payload.get("data") or {}
    if not isinstance(data, dict):
        raise EventError(f"event {payload.get('id')!r}: data is not an object")
    subject = str(payload.get("subject") or "")
    url = str(data.get("url") or "")
    container, blob_name = _container_and_blob(subject, url)
    length = data.get("contentLength")
    time = payload.get("time") if cloud else payload.get("eventTime")
    return BlobCreatedEvent(
        id=str(payload.get("id") or ""),
        time=_iso(time),
        container=container,
        blob_name=blob_name,
        url=url,
        etag=canonical_etag(str(data.get("eTag") or data.get("etag") or "")),
        content_length=int(length) if isinstance(length, int | float) else None,
        schema="CloudEvents" if cloud else "EventGrid",
        payload=payload,
        api=str(data.get("api") or ""),
    )


def _container_and_blob(subject: str, url: str) -> tuple[str, str]:
    # The subject carries the blob name as it is; data.url carries it percent-encoded, but
    # not every character: a '#' arrives raw (Azure/azure-sdk-for-net#23634, whose fix is to
    # take the url's text after the container rather than parse it as a URL), so a '#' or '?'
    # there is part of the name, never a fragment or query. A subject whose name holds
    # U+FFFD (characters outside the BMP have been seen mangled there:
    # Azure-Samples/azure-event-grid-viewer#9) yields to the url.
    from_subject = from_url = None
    if subject.startswith(_SUBJECT_PREFIX) and "/blobs/" in subject:
        container, _, blob = subject[len(_SUBJECT_PREFIX) :].partition("/blobs/")
        if container and blob:
            from_subject = container, blob
    if url and "://" in url:
        path = url.split("://", 1)[1].partition("/")[2]
        container, _, blob = unquote(path).partition("/")
        if container and blob:
            from_url = container, blob
    if from_subject and (from_url is None or "\ufffd" not in from_subject[1]):
        return from_subject
    if from_url:
        return from_url
    raise EventError(f"event has neither a blob subject nor a blob url (subject {subject!r})")


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value or "")


def make_event_grid_event(
    *,
    account_url: str,
    container: str,
    blob_name: str,
    etag: str,
    content_length: int,
    event_time: datetime | None = None,
    event_id: str | None = None,
    topic: str = "",
) -> dict[str, Any]:
    """A BlobCreated event in the Event Grid schema, as Azure Storage publishes it: the
    subject holds the blob name as it is, ``data.url`` holds it percent-encoded (UTF-8)."""
    when = (event_time or datetime.now(UTC)).astimezone(UTC)
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": topic,
        "subject": f"{_SUBJECT_PREFIX}{container}/blobs/{blob_name}",
        "eventType": BLOB_CREATED,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "dataVersion": "",
        "metadataVersion": "1",
        "data": {
            "api": "PutBlob",
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": canonical_etag(etag),
            "contentType": "application/octet-stream",
            "contentLength": content_length,
            "blobType": "BlockBlob",
            "url": f"{account_url.rstrip('/')}/{container}/{quote(blob_name, safe='/')}",
            "sequencer": f"{int(when.timestamp() * 1e6):032x}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
    }


def to_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event in the CloudEvents 1.0 schema (as an Event Grid subscription sends it)."""
    return {
        "specversion": "1.0",
        "id": event["id"],
        "source": event.get("topic", ""),
        "type": event["eventType"],
        "time": event["eventTime"],
        "subject": event["subject"],
        "datacontenttype": "application/json",
        "data": event["data"],
    }
