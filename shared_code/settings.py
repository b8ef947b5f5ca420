"""The one place that reads settings (app settings in Azure, environment variables locally).

Every name here is listed, with a local value, in ``local.settings.sample.json`` and set by
``infra/modules/functionapp.bicep``; ``tests/test_settings_contract.py`` keeps them in step.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent

#: Connection-setting *prefix* shared by our storage clients and the queue trigger binding.
#: Locally it holds a connection string; in Azure the identity-based form is used:
#: ``PIPELINE_STORAGE__blobServiceUri``, ``__queueServiceUri``, ``__tableServiceUri``
#: (and ``__clientId`` for a user-assigned identity).
STORAGE_CONNECTION = "PIPELINE_STORAGE"

#: Settings the pipeline reads, with their defaults (None: required).
DEFAULTS: dict[str, str | None] = {
    "RAW_CONTAINER": "raw",
    "CONVERT_QUEUE": "convert",
    "LEDGER_TABLE": "ledger",
    # Where the SeisComP VM publishes its provisioning health file (same account as the rest).
    "VM_HEALTH_CONTAINER": "vmhealth",
    "VM_HEALTH_BLOB": "health.json",
    "SHARE_ROOT": None,
    "FIELDS_CONFIG": "config/fields.toml",
    "SEAM_TIMEOUT_MINUTES": "30",
    "RECONCILE_GRACE_MINUTES": "30",
    "RETENTION_DAYS": "30",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "",
}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it."""


@dataclass(frozen=True)
class StorageConnection:
    """How to reach blob/queue/table storage: a connection string or identity-based URIs."""

    connection_string: str | None
    blob_service_uri: str | None
    queue_service_uri: str | None
    table_service_uri: str | None
    client_id: str | None

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    @property
    def provisioned(self) -> bool:
        """Tables, queues and containers already exist: the app must not create them.

        True with identity-based storage (Azure): ``infra/modules/storage.bicep`` declares them,
        and the app's data roles are scoped to each one, which cannot create it (Create Table
        needs ``tableServices/tables/write`` at account scope). False with a connection string
        (Azurite locally), where the app creates what is missing.
        """
        return self.uses_identity


@dataclass(frozen=True)
class Settings:
    raw_container: str
    convert_queue: str
    ledger_table: str
    vm_health_container: str
    vm_health_blob: str
    share_root: Path
    fields_config: Path
    seam_timeout_minutes: float
    reconcile_grace_minutes: float
    retention_days: float
    appinsights_connection_string: str
    storage: StorageConnection


def _storage_name(name: str, value: str) -> str:
    # Azure's rule for containers and queues: 3-63 lowercase letters, digits, single dashes.
    ok = (
        3 <= len(value) <= 63
        and value[0].isalnum()
        and value[-1].isalnum()
        and all(c.islower() or c.isdigit() or c == "-" for c in value)
        and "--" not in value
    )
    if not ok:
        raise SettingsError(
            f"setting {name}={value!r}: must be 3-63 lowercase letters, digits or single dashes"
        )
    return value


def _table_name(name: str, value: str) -> str:
    # Azure's rule for tables: 3-63 letters and digits, starting with a letter.
    if not (3 <= len(value) <= 63 and value[0].isalpha() and value.isalnum() and value.isascii()):
        raise SettingsError(
            f"setting {name}={value!r}: must be 3-63 letters and digits, starting with a letter"
        )
    return value


def _blob_name(name: str, value: str) -> str:
    # Azure's rule for blob names: 1-1024 characters, and names ending in a dot or a slash are
    # to be avoided
    # ("Naming and Referencing Containers, Blobs, and Metadata", learn.microsoft.com/rest/api/
    # storageservices/naming-and-referencing-containers--blobs--and-metadata).
    if len(value) > 1024 or value.endswith((".", "/", "\\")):
        raise SettingsError(
            f"setting {name}={value!r}: must be at most 1024 characters, not ending in . / or \\"
        )
    return value


def _positive_number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SettingsError(f"setting {name}={value!r}: not a number") from None
    if not number > 0:
        raise SettingsError(f"setting {name}={value!r}: must be greater than 0")
    return number


def _storage_connection(env: Mapping[str, str]) -> StorageConnection:
    conn = env.get(STORAGE_CONNECTION, "").strip()
    uris = {
        key: env.get(f"{STORAGE_CONNECTION}__{key}", "").strip() or None
        for key in ("blobServiceUri", "queueServiceUri", "tableServiceUri", "clientId")
    }
    if not conn and not uris["blobServiceUri"]:
        raise SettingsError(
            f"setting {STORAGE_CONNECTION} (connection string) or "
            f"{STORAGE_CONNECTION}__blobServiceUri/__queueServiceUri/__tableServiceUri "
            "(identity-based) is required"
        )
    if not conn:
        for key in ("queueServiceUri", "tableServiceUri"):
            if not uris[key]:
                raise SettingsError(
                    f"setting {STORAGE_CONNECTION}__{key} is required with identity-based storage"
                )
    return StorageConnection(
        connection_string=conn or None,
        blob_service_uri=uris["blobServiceUri"],
        queue_service_uri=uris["queueServiceUri"],
        table_service_uri=uris["tableServiceUri"],
        client_id=uris["clientId"],
    )


def _path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else APP_ROOT / path


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting from ``env`` (default: the process environment).

    Raises SettingsError naming the first setting that is missing or invalid.
    """
    env = os.environ if env is None else env

    def get(name: str) -> str:
        value = env.get(name, "").strip()
        if value:
            return value
        default = DEFAULTS[name]
        if default is None:
            raise SettingsError(f"setting {name} is required")
        return default

    share_root = _path(get("SHARE_ROOT"))
    fields_config = _path(get("FIELDS_CONFIG"))
    if not fields_config.is_file():
        raise SettingsError(f"setting FIELDS_CONFIG={fields_config}: no such file")
    return Settings(
        raw_container=_storage_name("RAW_CONTAINER", get("RAW_CONTAINER")),
        convert_queue=_storage_name("CONVERT_QUEUE", get("CONVERT_QUEUE")),
        ledger_table=_table_name("LEDGER_TABLE", get("LEDGER_TABLE")),
        vm_health_container=_storage_name("VM_HEALTH_CONTAINER", get("VM_HEALTH_CONTAINER")),
        vm_health_blob=_blob_name("VM_HEALTH_BLOB", get("VM_HEALTH_BLOB")),
        share_root=share_root,
        fields_config=fields_config,
        seam_timeout_minutes=_positive_number("SEAM_TIMEOUT_MINUTES", get("SEAM_TIMEOUT_MINUTES")),
        reconcile_grace_minutes=_positive_number(
            "RECONCILE_GRACE_MINUTES", get("RECONCILE_GRACE_MINUTES")
        ),
        retention_days=_positive_number("RETENTION_DAYS", get("RETENTION_DAYS")),
        appinsights_connection_string=get("APPLICATIONINSIGHTS_CONNECTION_STRING"),
        storage=_storage_connection(env),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once (the Functions host sets them before import)."""
    return load_settings()
