"""Shared fixtures: a real Azurite per test session, a real directory as the share."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import azurite
from shared_code.share_layout import ensure_layout

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
        "SHARE_ROOT": str(share),
        "FIELDS_CONFIG": str(ROOT / "config" / "fields.toml"),
    }
