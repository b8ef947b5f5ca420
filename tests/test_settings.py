"""Settings: read in one place, validated with errors that name the setting."""

import json
from pathlib import Path

import pytest

from shared_code.settings import DEFAULTS, STORAGE_CONNECTION, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
BASE = {"SHARE_ROOT": "/tmp/share", "PIPELINE_STORAGE": "UseDevelopmentStorage=true"}


def test_defaults_and_local_values() -> None:
    s = load_settings(BASE)
    assert s.raw_container == "raw" and s.convert_queue == "convert"
    assert (s.vm_health_container, s.vm_health_blob) == ("vmhealth", "health.json")
    assert s.storage.connection_string == "UseDevelopmentStorage=true"
    assert s.fields_config.is_file()


def test_identity_based_storage() -> None:
    env = {
        "SHARE_ROOT": "/mounts/ccs",
        "PIPELINE_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net",
        "PIPELINE_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
        "PIPELINE_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
    }
    s = load_settings(env)
    assert s.storage.uses_identity and s.storage.queue_service_uri


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"SHARE_ROOT": ""}, "SHARE_ROOT"),
        ({"PIPELINE_STORAGE": ""}, "PIPELINE_STORAGE"),
        ({"CONVERT_QUEUE": "Bad_Name"}, "CONVERT_QUEUE"),
        ({"RAW_CONTAINER": "ab"}, "RAW_CONTAINER"),
        ({"LEDGER_TABLE": "led-ger"}, "LEDGER_TABLE"),
        ({"VM_HEALTH_CONTAINER": "VM_Health"}, "VM_HEALTH_CONTAINER"),
        ({"VM_HEALTH_BLOB": "health/"}, "VM_HEALTH_BLOB"),
        ({"VM_HEALTH_BLOB": "h" * 1025}, "VM_HEALTH_BLOB"),
        ({"RETENTION_DAYS": "soon"}, "RETENTION_DAYS"),
        ({"SEAM_TIMEOUT_MINUTES": "-1"}, "SEAM_TIMEOUT_MINUTES"),
        ({"FIELDS_CONFIG": "/nonexistent/fields.toml"}, "FIELDS_CONFIG"),
    ],
)
def test_invalid_setting_is_named(override: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings({**BASE, **override})


def test_identity_needs_every_uri() -> None:
    env = {
        "SHARE_ROOT": "/x",
        "PIPELINE_STORAGE__blobServiceUri": "https://a.blob.core.windows.net",
    }
    with pytest.raises(SettingsError, match="queueServiceUri"):
        load_settings(env)


def test_sample_settings_list_every_setting() -> None:
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(DEFAULTS) | {STORAGE_CONNECTION} <= set(sample)
    # And nothing the code does not read, apart from the host's own settings.
    host = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "AzureWebJobsFeatureFlags"}
    assert set(sample) - host == set(DEFAULTS) | {STORAGE_CONNECTION}
    load_settings(sample)
