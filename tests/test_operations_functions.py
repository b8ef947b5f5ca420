"""The operations blueprint as the host would index and call it (real HttpRequest objects,
real Azurite, a real directory as the share)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions import operations
from shared_code.ledger import Ledger
from shared_code.settings import get_settings, load_settings
from shared_code.times import parse_since

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _app_functions() -> dict[str, Any]:
    app = func.FunctionApp()
    app.register_functions(operations.bp)
    return {f.get_function_name(): f for f in app.get_functions()}


def _call(name: str, *args: Any) -> Any:
    return _app_functions()[name].get_user_function()(*args)


class _Timer:
    past_due = False


class _TraceContext:
    Traceparent = TRACEPARENT
    Tracestate = ""
    Attributes = ""


class _Context:
    trace_context = _TraceContext()
    invocation_id = "inv-1"
    function_name = "test"


@pytest.fixture
def env(pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    for key, value in pipeline_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    get_settings.cache_clear()
    yield pipeline_env
    get_settings.cache_clear()


def _request(route: str, **params: str) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET", url=f"http://localhost/api/{route}", body=b"", params=params
    )


def test_bindings() -> None:
    functions = _app_functions()
    bindings = {n: json.loads(f.get_function_json())["bindings"] for n, f in functions.items()}
    for route in ("health", "status"):
        trigger = bindings[route][0]
        assert trigger["type"] == "httpTrigger"
        assert trigger["route"] == route
        assert trigger["methods"] == ["GET"]
        assert trigger["authLevel"] == "FUNCTION"
        assert bindings[route][1] == {"direction": "OUT", "type": "http", "name": "$return"}
    assert bindings["reconcile"] == [
        {"direction": "IN", "type": "timerTrigger", "name": "timer",
         "schedule": "0 */10 * * * *", "runOnStartup": False},
    ]  # fmt: skip
    assert bindings["retention"][0]["schedule"] == "0 0 3 * * *"
    assert bindings["retention"][0]["runOnStartup"] is False


@pytest.mark.azurite
def test_health_200_and_settings_503(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    conn = env["PIPELINE_STORAGE"]
    BlobServiceClient.from_connection_string(conn).create_container(env["RAW_CONTAINER"])
    QueueServiceClient.from_connection_string(conn).create_queue(env["CONVERT_QUEUE"])
    response = _call("health", _request("health"))
    assert response.status_code == 200, response.get_body()
    assert response.mimetype == "application/json"
    assert json.loads(response.get_body())["status"] == "ok"

    monkeypatch.delenv("SHARE_ROOT")
    get_settings.cache_clear()
    response = _call("health", _request("health"))
    assert response.status_code == 503
    body = json.loads(response.get_body())
    assert body["down"] == ["settings"] and "SHARE_ROOT" in body["checks"]["settings"]["detail"]


@pytest.mark.azurite
def test_status(env: dict[str, str]) -> None:
    ledger = Ledger.from_settings(load_settings(env))
    for i in range(3):
        ledger.begin("snorre", f"snorre/{i}.segy", "0x1", event_id=f"e{i}", event_time="")
    ledger.mark_failed("snorre", "snorre/0.segy", "0x1", stage="decimate", reason="bad header")
    ledger.begin("grane", "grane/a.segy", "0x1", event_id="g", event_time="")

    body = json.loads(_call("status", _request("status")).get_body())
    assert body["count"] == 4
    assert body["counts"] == {"snorre": {"failed": 1, "received": 2}, "grane": {"received": 1}}

    response = _call("status", _request("status", field="snorre", state="failed", since="1h"))
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert [r["blob"] for r in body["rows"]] == ["snorre/0.segy"]
    assert body["rows"][0]["reason"] == "bad header"

    future = _request("status", since="2999-01-01T00:00:00Z")
    assert json.loads(_call("status", future).get_body())["count"] == 0
    assert _call("status", _request("status", state="lost")).status_code == 400
    assert _call("status", _request("status", since="yesterday")).status_code == 400


@pytest.mark.azurite
def test_reconcile_timer_redrives_through_the_pipeline(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.storage.blob import BlobServiceClient

    import shared_code.pipeline

    monkeypatch.setenv("RECONCILE_GRACE_MINUTES", "0.01")  # 0.6 s
    get_settings.cache_clear()
    container = BlobServiceClient.from_connection_string(env["PIPELINE_STORAGE"]).create_container(
        env["RAW_CONTAINER"]
    )
    container.upload_blob("oseberg/never-delivered.segy", b"raw")
    calls: list[str] = []
    monkeypatch.setattr(
        shared_code.pipeline,
        "redrive_blob",
        lambda settings, name: calls.append(name),
        raising=False,
    )
    time.sleep(1.0)
    _call("reconcile", _Timer(), _Context())
    assert calls == ["oseberg/never-delivered.segy"]


def test_retention_timer(env: dict[str, str]) -> None:
    share = Path(env["SHARE_ROOT"])
    old = share / "mseed/snorre/old.mseed"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    ancient = time.time() - 100 * 86400
    os.utime(old, (ancient, ancient))
    young = share / "mseed/snorre/young.mseed"
    young.write_bytes(b"x")
    _call("retention", _Timer(), _Context())
    assert not old.exists() and young.exists()


def test_parse_since() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_since("6h", now) == now - timedelta(hours=6)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2024-05-01T00:00:00") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_since("") is None
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_since("soon")


@pytest.mark.azurite
def test_status_shows_poison_messages_resolved_once_their_blob_converted(
    env: dict[str, str],
) -> None:
    from azure.storage.blob import BlobServiceClient

    from shared_code.messages import ConvertRequest, SourceBlob
    from shared_code.storage import queue_client

    settings = load_settings(env)
    conn = env["PIPELINE_STORAGE"]
    raw = BlobServiceClient.from_connection_string(conn).create_container(env["RAW_CONTAINER"])
    # Real ETags as the SDK reports them (quoted); the ledger and the message hold them canonical.
    etags = {}
    for name in ("snorre/recovered.segy", "snorre/stuck.segy"):
        etags[name] = str(raw.upload_blob(name, b"raw").get_blob_properties().etag)
    # The host moves a message to <queue>-poison unchanged: base64, as the pipeline wrote it.
    poison = queue_client(settings.storage, f"{env['CONVERT_QUEUE']}-poison")
    poison.create_queue()
    for name, etag in etags.items():
        source = SourceBlob(
            url=f"{raw.url}/{name}", container=env["RAW_CONTAINER"], name=name, etag=etag,
            event_id=f"e-{name}", event_time="",
        )  # fmt: skip
        request = ConvertRequest(
            field="snorre", decimated_path=f"decimated/{name}", file_type="SEGY",
            sampling_rate_hz=250.0, integer_counts=False, source=source,
        )  # fmt: skip
        poison.send_message(request.to_json())
    poison.send_message("not a convert request")
    ledger = Ledger.from_settings(settings)
    for name, etag in etags.items():
        ledger.begin("snorre", name, etag, event_id=f"e-{name}", event_time="")
        ledger.mark_decimated("snorre", name, etag, f"decimated/{name}")
    # Later recovered (a replay converted it); the other one still waits for an operator.
    ledger.mark_converted("snorre", "snorre/recovered.segy", etags["snorre/recovered.segy"], [])

    body = json.loads(_call("status", _request("status")).get_body())

    by_blob = {entry.get("blob"): entry for entry in body["poison"]}
    assert len(body["poison"]) == 3
    assert by_blob["snorre/recovered.segy"]["resolved"] is True
    assert by_blob["snorre/recovered.segy"]["ledger_state"] == "converted"
    assert by_blob["snorre/stuck.segy"]["resolved"] is False
    assert by_blob["snorre/stuck.segy"]["ledger_state"] == "decimated"
    assert by_blob["snorre/stuck.segy"]["etag"] == etags["snorre/stuck.segy"].strip('"')
    garbage = by_blob[None]
    assert garbage["resolved"] is False and "not JSON" in garbage["error"]
