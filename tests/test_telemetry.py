"""Telemetry against a loopback HTTP server standing in for the Application Insights ingestion
endpoint: the real OpenCensus exporters send to it, and we read what they sent."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared_code import telemetry

ROOT = Path(__file__).resolve().parent.parent
IKEY = "11111111-2222-4333-8444-555555555555"
ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LW5vdC1yZWFsLTEyMzQ1Njc4OTA="
SIG = "Zm9vYmFyU2lnbmF0dXJlVmFsdWU%3D"
SAS_URL = (
    "https://acct.blob.core.windows.net/raw/snorre/a.segy"
    f"?sv=2022-11-02&ss=b&srt=o&sp=r&se=2030-01-01T00:00:00Z&sig={SIG}"
)
STORAGE_CONN = (
    "DefaultEndpointsProtocol=https;AccountName=acct;"
    f"AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class _Ingestion:
    """A tiny ingestion endpoint: records every envelope POSTed to it."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                text = body.decode("utf-8")
                received.raw.append(text)
                received.paths.append(self.path)
                items = json.loads(text)
                received.envelopes.extend(items)
                reply = json.dumps(
                    {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def connection_string(self) -> str:
        return f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{self.port}/;"

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [e for e in list(self.envelopes) if predicate(e)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching envelope among {len(self.envelopes)} received")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ingestion() -> Iterator[_Ingestion]:
    server = _Ingestion()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _reset_telemetry() -> Iterator[None]:
    telemetry.shutdown(timeout_s=1.0)
    yield
    telemetry.shutdown(timeout_s=1.0)


def _properties(envelope: dict[str, Any]) -> dict[str, Any]:
    return dict(envelope["data"]["baseData"].get("properties") or {})


# --- scrubber ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (STORAGE_CONN, ACCOUNT_KEY),
        (f"failed to read {SAS_URL}: 403", SIG),
        (f"token sv=2022-11-02&se=2030-01-01&sig={SIG}", SIG),
        (
            "BlobEndpoint=https://a.blob.core.windows.net/;"
            f"SharedAccessSignature=sv=2022-11-02&ss=b&sig={SIG}",
            SIG,
        ),
        (f"InstrumentationKey={IKEY};IngestionEndpoint=https://x/", IKEY),
        (f"Endpoint=sb://x/;SharedAccessKeyName=r;SharedAccessKey={ACCOUNT_KEY}", ACCOUNT_KEY),
        (f"{{'account_key': '{ACCOUNT_KEY}', 'name': 'acct'}}", ACCOUNT_KEY),
        (f"Authorization: Bearer {ACCOUNT_KEY}", ACCOUNT_KEY),
    ],
)
def test_scrub_removes_secrets(text: str, secret: str) -> None:
    cleaned = telemetry.scrub(text)
    assert secret not in cleaned
    assert telemetry.REDACTED in cleaned


def test_scrub_keeps_what_operators_need() -> None:
    text = "decimate failed for snorre/2024/a.segy etag 0x8DC1 se=unrelated-word: bad header"
    cleaned = telemetry.scrub(f"{text} {SAS_URL}")
    assert "snorre/2024/a.segy" in cleaned
    assert "https://acct.blob.core.windows.net/raw/snorre/a.segy?" in cleaned
    assert "bad header" in cleaned
    assert SIG not in cleaned and "2030-01-01" not in cleaned
    msg = "ManagedIdentityCredential: ManagedIdentityCredential authentication unavailable"
    assert telemetry.scrub(msg) == msg
    assert ACCOUNT_KEY not in telemetry.scrub(f"storage_account_key={ACCOUNT_KEY}")


def test_scrub_dimensions_by_name_and_value() -> None:
    dims = telemetry.scrub_dimensions(
        {"field": "snorre", "blob_url": SAS_URL, "sas_token": "abc", "count": 3, "ok": True}
    )
    assert dims["field"] == "snorre"
    assert SIG not in dims["blob_url"]
    assert dims["sas_token"] == telemetry.REDACTED
    assert dims["count"] == 3 and dims["ok"] is True


def test_scrub_filter_on_root_handlers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    telemetry.install_scrubber()
    log = logging.getLogger("shared_code.test")
    log.info("reading %s with %s", SAS_URL, STORAGE_CONN)
    try:
        raise RuntimeError(f"storage said no to {SAS_URL}")
    except RuntimeError:
        log.exception("it failed")
    text = caplog.text
    assert SIG not in text and ACCOUNT_KEY not in text
    assert "acct.blob.core.windows.net" in text


# --- no-op and laziness -----------------------------------------------------------------------


def test_unset_connection_string_is_a_noop(caplog: pytest.LogCaptureFixture) -> None:
    assert telemetry.configure("") is False
    assert telemetry.configure(None) is False
    assert not telemetry.is_enabled()
    telemetry.track_metric(telemetry.MINISEED_FILES_WRITTEN, 1, field="snorre")
    telemetry.record_stage("decimate", "snorre", ok=True, seconds=0.1)
    telemetry.record_end_to_end("snorre", datetime.now(UTC))
    telemetry.flush()


def test_invalid_connection_string_disables_without_echoing_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    assert telemetry.configure(f"IngestionEndpoint=http://127.0.0.1:1/;Junk={ACCOUNT_KEY}") is False
    assert "telemetry disabled" in caplog.text
    assert ACCOUNT_KEY not in caplog.text


def test_import_does_not_load_opencensus() -> None:
    code = (
        "import sys, shared_code.telemetry as t; t.configure('');"
        "print(sorted(m for m in sys.modules if m.startswith('opencensus')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_operation_context() -> None:
    assert telemetry.current_operation_id() == ""
    with telemetry.operation("evt-1", traceparent=TRACEPARENT, field="snorre") as op_id:
        assert op_id == "evt-1"
        telemetry.bind(blob="snorre/a.segy")
        with telemetry.operation(stage="decimate"):
            dims = telemetry.current_dimensions()
            assert dims == {
                "field": "snorre",
                "blob": "snorre/a.segy",
                "stage": "decimate",
                "operation_id": "evt-1",
            }
    assert telemetry.current_operation_id() == ""


def test_trace_parent_of_duck_types_the_worker_context() -> None:
    class WorkerTraceContext:  # the worker's spelling
        Traceparent = TRACEPARENT
        Tracestate = ""

    class LibraryTraceContext:  # azure.functions' abstract spelling
        trace_parent = TRACEPARENT

    class Context:
        def __init__(self, tc: object) -> None:
            self.trace_context = tc

    assert telemetry.trace_parent_of(Context(WorkerTraceContext())) == TRACEPARENT
    assert telemetry.trace_parent_of(Context(LibraryTraceContext())) == TRACEPARENT
    assert telemetry.trace_parent_of(object()) is None


# --- the real exporter against the loopback endpoint ------------------------------------------


def test_logs_and_metrics_reach_the_endpoint_scrubbed(
    ingestion: _Ingestion, tmp_path: Path
) -> None:
    assert telemetry.configure(
        ingestion.connection_string, export_interval_s=0.2, storage_path=str(tmp_path / "spool")
    )
    log = logging.getLogger("shared_code.pipeline")
    created = datetime.now(UTC) - timedelta(seconds=42)
    with telemetry.operation(
        "evt-123",
        traceparent=TRACEPARENT,
        field="snorre",
        blob="snorre/2024/a.segy",
        etag="0x8DC1",
        event_id="evt-123",
    ):
        with telemetry.operation(stage="decimate"):
            telemetry.log_event(log, f"decimated {SAS_URL}", blob_url=SAS_URL, seed_ids=12)
            telemetry.record_stage(
                "decimate",
                "snorre",
                ok=True,
                seconds=1.5,
                bytes_in=1000,
                bytes_out=100,
                samples_in=5000,
                samples_out=500,
                nonfinite_samples=7,
            )
        log.warning("storage connection %s refused", STORAGE_CONN)
        latency = telemetry.record_end_to_end("snorre", created, mseed_files=2)
    assert 41 < latency < 60
    logging.getLogger("somebody.else").warning("not ours")
    telemetry.flush(timeout_s=5)

    messages = ingestion.wait_for(
        lambda e: (
            e["name"] == "Microsoft.ApplicationInsights.Message"
            and "decimated" in e["data"]["baseData"]["message"]
        )
    )
    props = _properties(messages[0])
    assert props["field"] == "snorre"
    assert props["blob"] == "snorre/2024/a.segy"
    assert props["etag"] == "0x8DC1"
    assert props["event_id"] == "evt-123"
    assert props["stage"] == "decimate"
    assert props["operation_id"] == "evt-123"
    assert props["seed_ids"] == 12
    # correlated with the host's invocation through its traceparent
    assert messages[0]["tags"]["ai.operation.id"] == "0af7651916cd43dd8448eb211c80319c"
    assert "b7ad6b7169203331" in messages[0]["tags"]["ai.operation.parentId"]

    converted = ingestion.wait_for(
        lambda e: "file converted" in e["data"]["baseData"].get("message", "")
    )
    assert _properties(converted[0])["end_to_end_seconds"] >= 41

    metrics = ingestion.wait_for(lambda e: e["name"] == "Microsoft.ApplicationInsights.Metric")
    by_name: dict[str, dict[str, Any]] = {}
    for env in metrics:
        base = env["data"]["baseData"]
        by_name[base["metrics"][0]["name"]] = {**base["metrics"][0], **base["properties"]}
    written = by_name[telemetry.MINISEED_FILES_WRITTEN]
    assert written["value"] == 2 and written["count"] == 1 and written["field"] == "snorre"
    assert written["ns"] == telemetry.METRIC_NAMESPACE
    assert by_name[telemetry.FILES_PROCESSED]["stage"] == "decimate"
    assert by_name[telemetry.SAMPLES_OUT]["value"] == 500
    assert by_name[telemetry.NONFINITE_SAMPLES]["value"] == 7
    assert by_name[telemetry.STAGE_SECONDS]["value"] == 1.5
    assert by_name[telemetry.END_TO_END_SECONDS]["value"] >= 41

    # nothing but our own loggers, and no secret anywhere in what was sent
    everything = "\n".join(ingestion.raw)
    assert "not ours" not in everything
    for secret in (SIG, ACCOUNT_KEY, "2030-01-01"):
        assert secret not in everything
    for env in ingestion.envelopes:
        # the iKey envelope header is the protocol's address, never a dimension or message
        assert IKEY not in json.dumps(env["data"])
    assert all(path.endswith("/v2.1/track") for path in ingestion.paths)


def test_unreachable_endpoint_never_blocks_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging and metrics never touch the network on the caller's thread: the exporter's own
    threads do, and their failures stay there. Checked by who connects, not by a stopwatch."""
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    callers: list[threading.Thread] = []
    real_connect = socket.socket.connect

    def spy(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[1] == port:
            callers.append(threading.current_thread())
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", spy)
    conn = f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{port}/"
    assert telemetry.configure(conn, export_interval_s=0.1, storage_path=str(tmp_path / "s"))
    log = logging.getLogger("shared_code.pipeline")
    main = threading.current_thread()
    for i in range(500):
        with telemetry.operation(f"evt-{i}", field="grane"):
            log.info("file %d", i)
            telemetry.record_stage("convert", "grane", ok=False, seconds=0.01, reason="x")
    telemetry.track_metric(telemetry.FILES_FAILED, 1, field="grane", stage="convert")
    assert main not in callers
    deadline = time.monotonic() + 20
    while not callers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert callers, "the exporter never tried to send"
    assert all(thread is not main for thread in callers)


def test_workbook_and_docs_use_the_names_telemetry_sends() -> None:
    import re

    workbook = json.loads((ROOT / "infra" / "workbook.json").read_text())
    assert workbook["version"] == "Notebook/1.0"
    queries = [i["content"]["query"] for i in workbook["items"] if i["type"] == 3]
    assert len(queries) >= 8
    docs = (ROOT / "docs" / "operations.md").read_text()
    for text in [*queries, docs]:
        for name in re.findall(r'name == "(\w+)"', text):
            assert name in telemetry.METRIC_NAMES, name
    for item in workbook["items"]:
        if item["type"] == 3:
            assert item["content"]["resourceType"] == "microsoft.insights/components"
            assert item["content"]["timeContextFromParameter"] == "TimeRange"
    for needed in ("MiniseedFilesWritten", "PoisonQueueDepth", "end_to_end_seconds", "failed"):
        assert needed in json.dumps(workbook)
    assert "azure-monitor-opentelemetry" in docs
