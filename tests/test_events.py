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


@pytest.mark.parametrize(
    "name", ["snorre/小文件.sgy", "snorre/Snorre line 4 #1.sgy", "snorre/a?b&c=d%20e+f.sgy"]
)
def test_names_with_spaces_and_non_ascii_letters_come_through_both_fields(name: str) -> None:
    """The subject carries the name as it is, ``data.url`` percent-encoded (UTF-8); either
    alone gives the name back, through the worker's converter, in both schemas."""
    event = make_event_grid_event(
        account_url="https://acct.blob.core.windows.net", container="raw", blob_name=name,
        etag="0x8D1", content_length=1,
    )  # fmt: skip
    assert " " not in event["data"]["url"] and "#" not in event["data"]["url"]
    for payload in (event, to_cloud_event(event)):
        assert parse_blob_created(event_payload(_through_worker(payload))).blob_name == name
        no_subject = json.loads(json.dumps(payload))
        no_subject["subject"] = ""
        assert parse_blob_created(no_subject).blob_name == name


def test_a_raw_hash_in_the_url_is_part_of_the_name_not_a_fragment() -> None:
    """Event Grid leaves '#' unencoded in data.url (Azure/azure-sdk-for-net#23634)."""
    payload = json.loads(json.dumps(EVENT))
    payload["subject"] = ""
    payload["data"]["url"] = "https://acct.blob.core.windows.net/raw/snorre/line%204%20#1.sgy"
    assert parse_blob_created(payload).blob_name == "snorre/line 4 #1.sgy"


def test_a_mangled_subject_yields_to_the_url() -> None:
    """Characters outside the BMP have been seen replaced by U+FFFD in the subject."""
    event = make_event_grid_event(
        account_url="https://acct.blob.core.windows.net", container="raw",
        blob_name="snorre/log_14💎.sgy", etag="0x8D1", content_length=1,
    )  # fmt: skip
    event["subject"] = event["subject"].replace("💎", "\ufffd\ufffd")
    assert parse_blob_created(event).blob_name == "snorre/log_14💎.sgy"
