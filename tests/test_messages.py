"""The ConvertRequest schema, validated on both ends."""

import json

import pytest

from shared_code.messages import ConvertRequest, MessageError, SourceBlob

SOURCE = SourceBlob(
    url="https://a.blob.core.windows.net/raw/snorre/f.sgy", container="raw",
    name="snorre/f.sgy", etag='"0x8D"', event_id="e1", event_time="2026-11-23T12:00:00Z",
)  # fmt: skip
REQUEST = ConvertRequest(
    field="snorre", decimated_path="decimated/snorre/f.sgy.segy", file_type="SEGY",
    sampling_rate_hz=250.0, integer_counts=True, source=SOURCE, operation_id="op",
)  # fmt: skip


def test_roundtrip() -> None:
    assert ConvertRequest.from_json(REQUEST.to_json()) == REQUEST
    assert json.loads(REQUEST.to_json())["version"] == 1


def test_data_start_travels_and_older_messages_without_it_still_parse() -> None:
    from dataclasses import replace

    dated = replace(REQUEST, data_start_ns=-5)  # before 1970 is a valid time
    assert ConvertRequest.from_json(dated.to_json()).data_start_ns == -5
    raw = json.loads(REQUEST.to_json())
    raw.pop("data_start_ns")  # as queued by the release before it
    assert ConvertRequest.from_json(json.dumps(raw)).data_start_ns is None


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.pop("version"), "version None"),
        (lambda d: d.pop("field"), "'field'"),
        (lambda d: d.update(sampling_rate_hz="250"), "sampling_rate_hz"),
        (lambda d: d.update(integer_counts=1), "integer_counts"),
        (lambda d: d.update(decimated_path="../etc/passwd"), "not under decimated"),
        (lambda d: d.update(surprise=1), "unknown keys"),
        (lambda d: d.pop("source"), "source"),
        (lambda d: d["source"].pop("name"), "source.'name'|source.name"),
        (lambda d: d.update(data_start_ns="1"), "data_start_ns"),
        (lambda d: d.update(data_start_ns=True), "data_start_ns"),
        (lambda d: d.update(data_start_ns=1.5), "data_start_ns"),
    ],
)
def test_invalid_messages_rejected(mutate, match: str) -> None:
    raw = json.loads(REQUEST.to_json())
    mutate(raw)
    with pytest.raises(MessageError, match=match):
        ConvertRequest.from_json(json.dumps(raw))


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", b"\xff\xfe"])
def test_garbage_rejected(text: str) -> None:
    with pytest.raises(MessageError):
        ConvertRequest.from_json(text)


def test_trace_index_ranges() -> None:
    from shared_code.messages import format_ranges, parse_ranges

    indices = [0, 1, 2, 3, 8, 10, 11, 4]
    assert format_ranges(indices) == "0-3,8,10-11,4"
    assert parse_ranges(format_ranges(indices)) == indices
    assert parse_ranges("") == []
