"""Shared fixtures: a real Azurite per test session, a real directory as the share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import azurite
from shared_code.share_layout import ensure_layout
from tests.azure_events import DOC_ETAG

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def azurite_instance() -> Iterator[azurite.AzuriteInstance]:
    with azurite.running() as instance:
        yield instance


@pytest.fixture
def azurite_conn(azurite_instance: azurite.AzuriteInstance) -> str:
    return azurite_instance.connection_string


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    ensure_layout(root)
    return root


@pytest.fixture
def unique() -> str:
    """A short unique suffix for container/queue/table names (Azurite is shared per session)."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def pipeline_env(azurite_conn: str, share: Path, unique: str) -> dict[str, str]:
    """Settings for one test: its own container, queue and table on the session's Azurite."""
    return {
        "PIPELINE_STORAGE": azurite_conn,
        "AzureWebJobsStorage": azurite_conn,
        "RAW_CONTAINER": f"raw{unique}",
        "CONVERT_QUEUE": f"convert{unique}",
        "LEDGER_TABLE": f"ledger{unique}",
        "VM_HEALTH_CONTAINER": f"vmhealth{unique}",
        "SHARE_ROOT": str(share),
        "FIELDS_CONFIG": str(ROOT / "config" / "fields.toml"),
    }


class LocalPipeline:
    """A raw container, a convert queue (+ poison) and a share, wired to the real triggers."""

    def __init__(self, env: dict[str, str]) -> None:
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueClient

        self.env = env
        conn = env["PIPELINE_STORAGE"]
        self.share = Path(env["SHARE_ROOT"])
        self.blobs = BlobServiceClient.from_connection_string(conn)
        self.container = self.blobs.create_container(env["RAW_CONTAINER"])
        # No decode policy: tests see the wire format, and decode it as the host does.
        self.queue = QueueClient.from_connection_string(conn, env["CONVERT_QUEUE"])
        self.queue.create_queue()
        self.poison = QueueClient.from_connection_string(conn, env["CONVERT_QUEUE"] + "-poison")
        self.poison.create_queue()

    def upload(self, blob_name: str, payload: bytes) -> dict:
        client = self.container.upload_blob(blob_name, payload, overwrite=True)
        return {"etag": str(client.get_blob_properties().etag), "size": len(payload)}

    def event(
        self, blob_name: str, etag: str = DOC_ETAG, size: int = 1, container: str | None = None
    ) -> dict:
        from shared_code.events import make_event_grid_event

        return make_event_grid_event(
            account_url=self.blobs.url, container=container or self.env["RAW_CONTAINER"],
            blob_name=blob_name, etag=etag, content_length=size,
        )  # fmt: skip

    def upload_and_deliver(self, blob_name: str, payload: bytes, cloud: bool = False) -> dict:
        from scripts.local_host import deliver_event
        from shared_code.events import to_cloud_event

        props = self.upload(blob_name, payload)
        event = self.event(blob_name, props["etag"], props["size"])
        deliver_event(to_cloud_event(event) if cloud else event)
        return event

    def drain(self):
        from scripts.local_host import drain_queue

        return drain_queue(self.queue, self.poison)

    def failures(self) -> list[dict]:
        from shared_code.failures import list_failures

        return [record for _path, record in list_failures(self.share)]


@pytest.fixture
def pipeline(
    pipeline_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalPipeline]:
    from shared_code.settings import get_settings

    for key, value in pipeline_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield LocalPipeline(pipeline_env)
    get_settings.cache_clear()
