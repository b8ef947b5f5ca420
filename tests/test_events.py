"""BlobCreated events in both schemas, as the worker's converter hands them over."""

import json

import azure.functions as func
import pytest
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

from functions.decimate import event_payload
from shared_code.events import EventError, make_event_grid_event, parse_blob_created, to_cloud_event

EVENT = make_event_grid_event(
    account_url="https://acct.blob.core.windows.net", container="raw",
    blob_name="snorre/2026/a b%.sgy", etag="0x8DC0FFEE", content_length=1234,
)  # fmt: skip


def _through_worker(payload: dict) -> func.EventGridEvent | func.CloudEvent:
    return EventGridEventInConverter.decode(
        meta.Datum(json.dumps(payload), "json"), trigger_metadata={}
    )


@pytest.mark.parametrize("schema", ["EventGrid", "CloudEvents"])
def test_both_schemas_parse_the_same(schema: str) -> None:
    payload = EVENT if schema == "EventGrid" else to_cloud_event(EVENT)
    obj = _through_worker(payload)
    event = parse_blob_created(event_payload(obj))
    assert event.schema == schema
    assert event.container == "raw"
    assert event.blob_name == "snorre/2026/a b%.sgy"
    assert event.etag == "0x8DC0FFEE"
    assert event.content_length == 1234
    assert event.id == EVENT["id"]


def test_blob_name_from_url_when_subject_missing() -> None:
    payload = json.loads(json.dumps(EVENT))
    payload["subject"] = ""
    payload["data"]["url"] = "https://acct.blob.core.windows.net/raw/snorre/a%20b.sgy"
    assert parse_blob_created(payload).blob_name == "snorre/a b.sgy"


def test_other_event_types_rejected() -> None:
    payload = dict(EVENT, eventType="Microsoft.Storage.BlobDeleted")
    with pytest.raises(EventError, match="BlobDeleted"):
        parse_blob_created(payload)
