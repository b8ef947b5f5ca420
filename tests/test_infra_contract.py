"""The Bicep in infra/ and the code agree: settings, names, mount path, function names, roles,
Python version, telemetry names. Everything on the code side is read from the code (settings,
bindings, host.json, pyproject, telemetry), never restated here; the Bicep is read with plain
regular expressions, so this runs in the main venv without the IaC tools."""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shared_code import seiscomp, settings, telemetry
from shared_code.share_layout import MSEED

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"

#: Settings that Flex Consumption does not take as app settings: the runtime is
#: functionAppConfig.runtime, and worker indexing is the default.
NOT_APP_SETTINGS_ON_FLEX = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags"}
#: App settings only the infrastructure uses (the share mount's Key Vault reference).
INFRA_ONLY_SETTINGS = {"SHARE_ACCOUNT_KEY"}
#: Connection settings that are connection strings locally and identity-based in Azure.
IDENTITY_CONNECTIONS = {"AzureWebJobsStorage", settings.STORAGE_CONNECTION}

#: The field configuration the app reads (FIELDS_CONFIG) and ships in its package.
FIELDS_CONFIG = settings.DEFAULTS["FIELDS_CONFIG"] or "config/fields.toml"

#: Built-in role definition ids (Azure RBAC), by the name the Bicep gives them.
BUILT_IN_ROLES = {
    "blobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "blobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "queueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "queueDataReader": "19e7f393-937e-4f77-808e-94535e297925",
    "queueDataMessageSender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "tableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
}


# --- reading Bicep -------------------------------------------------------------------------------


@cache
def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def literal(raw: str) -> Any:
    raw = raw.strip()
    if raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def params(path: Path) -> dict[str, Any]:
    """``param name type = default`` -> {name: default literal or expression text (or None)}."""
    found = {}
    for m in re.finditer(r"^param (\w+) \w+(?: = (.+))?$", text(path), re.MULTILINE):
        found[m[1]] = None if m[2] is None else literal(m[2])
    return found


def variables(path: Path) -> dict[str, Any]:
    return {
        m[1]: literal(m[2]) for m in re.finditer(r"^var (\w+) = (.+)$", text(path), re.MULTILINE)
    }


def block(source: str, header: str) -> str:
    """The brace-balanced body that follows ``header`` (first occurrence)."""
    start = source.index(header)
    open_at = source.index("{", start)
    depth = 0
    for i in range(open_at, len(source)):
        depth += {"{": 1, "}": -1}.get(source[i], 0)
        if depth == 0:
            return source[open_at : i + 1]
    raise AssertionError(f"unbalanced braces after {header!r}")


def module_args(name: str) -> dict[str, str]:
    body = block(text(INFRA / "main.bicep"), f"module {name} ")
    params_body = block(body, "params:")
    return dict(re.findall(r"^\s+(\w+): (.+)$", params_body, re.MULTILINE))


def app_settings() -> dict[str, str]:
    """Name -> value expression of the function app's siteConfig.appSettings."""
    source = text(MODULES / "functionapp.bicep")
    found = {}
    for name, value in re.findall(r"\{ name: ([^,]+), value: (.+) \}$", source, re.MULTILINE):
        resolved = literal(name)
        if not name.startswith("'"):
            resolved = variables(MODULES / "functionapp.bicep")[name]
        found[resolved] = value.strip()
    return found


def role_assignments(path: Path) -> set[tuple[str, str]]:
    """(scope expression, role key) of every role assignment in a module."""
    found = set()
    pattern = r"resource \w+ 'Microsoft\.Authorization/roleAssignments@[^']+' = (?:if \([^)]*\) )?"
    for m in re.finditer(pattern, text(path)):
        body = block(text(path), m[0])
        scope = re.search(r"^\s+scope: (\S+)$", body, re.MULTILINE)
        role = re.search(r"roleDefinitions', (?:roles\.)?(\w+)\)", body)
        assert scope and role, body
        found.add((scope[1], role[1]))
    return found


@cache
def sample_values() -> dict[str, str]:
    values: dict[str, str] = json.loads(text(ROOT / "local.settings.sample.json"))["Values"]
    return values


@cache
def indexed_functions() -> dict[str, list[dict[str, Any]]]:
    """Function name -> binding dicts, as the host would index them."""
    from scripts.local_host import indexed_functions as host_index

    return {name: json.loads(f.get_function_json())["bindings"] for name, f in host_index().items()}


# --- app settings --------------------------------------------------------------------------------


def test_app_settings_are_the_sample_settings_one_to_one() -> None:
    bicep = app_settings()
    sample = set(sample_values())
    for key in sample - NOT_APP_SETTINGS_ON_FLEX:
        forms = [name for name in bicep if name == key or name.startswith(f"{key}__")]
        assert forms, f"{key} (local.settings.sample.json) is not set by functionapp.bicep"
    for key in NOT_APP_SETTINGS_ON_FLEX:
        assert key in sample
        assert not any(name.split("__")[0] == key for name in bicep), (
            f"{key} must not be an app setting on Flex Consumption"
        )
    for name in bicep:
        base = name.split("__")[0]
        assert base in sample or name in INFRA_ONLY_SETTINGS, f"{name}: not in the sample settings"


def test_every_setting_the_code_reads_is_in_the_sample() -> None:
    assert set(settings.DEFAULTS) <= set(sample_values())
    assert settings.STORAGE_CONNECTION in sample_values()


def test_connections_are_identity_based() -> None:
    bicep = app_settings()
    for connection in IDENTITY_CONNECTIONS:
        assert connection not in bicep, f"{connection}: no connection string in Azure"
        assert bicep.get(f"{connection}__credential") == "'managedidentity'"
    # shared_code/settings.py needs all three service URIs in the identity-based form.
    for service in ("blobServiceUri", "queueServiceUri", "tableServiceUri"):
        value = bicep[f"{settings.STORAGE_CONNECTION}__{service}"]
        kind = service.removesuffix("ServiceUri")
        assert value == f"'https://${{pipelineAccount.name}}.{kind}.${{storageSuffix}}'"
    assert bicep["AzureWebJobsStorage__accountName"] == "hostAccount.name"


def test_setting_values_follow_the_template_parameters() -> None:
    bicep = app_settings()
    expected = {
        "RAW_CONTAINER": "rawContainerName",
        "CONVERT_QUEUE": "convertQueueName",
        "LEDGER_TABLE": "ledgerTableName",
        "VM_HEALTH_CONTAINER": "vmHealthContainerName",
        "VM_HEALTH_BLOB": "vmHealthBlobName",
        "SHARE_ROOT": "shareMountPath",
        "FIELDS_CONFIG": "fieldsConfig",
        "SEAM_TIMEOUT_MINUTES": "string(seamTimeoutMinutes)",
        "RECONCILE_GRACE_MINUTES": "string(reconcileGraceMinutes)",
        "RETENTION_DAYS": "string(retentionDays)",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "appInsightsConnectionString",
    }
    assert set(expected) == set(settings.DEFAULTS)
    for setting, expression in expected.items():
        assert bicep[setting] == expression, setting
    args = module_args("functionApp")
    for expression in expected.values():
        name = expression.removeprefix("string(").removesuffix(")")
        if name != "appInsightsConnectionString":
            assert args[name] == name, f"main.bicep must pass {name} through"


def test_names_match_the_code_defaults() -> None:
    main = params(INFRA / "main.bicep")
    assert main["rawContainerName"] == settings.DEFAULTS["RAW_CONTAINER"]
    assert main["convertQueueName"] == settings.DEFAULTS["CONVERT_QUEUE"]
    assert main["ledgerTableName"] == settings.DEFAULTS["LEDGER_TABLE"]
    assert main["fieldsConfig"] == settings.DEFAULTS["FIELDS_CONFIG"]
    assert main["deadLetterContainerName"] == "deadletter"
    assert main["seamTimeoutMinutes"] == int(settings.DEFAULTS["SEAM_TIMEOUT_MINUTES"] or 0)
    assert main["reconcileGraceMinutes"] == int(settings.DEFAULTS["RECONCILE_GRACE_MINUTES"] or 0)
    assert main["retentionDays"] == int(settings.DEFAULTS["RETENTION_DAYS"] or 0)
    main_vars = variables(INFRA / "main.bicep")
    assert main_vars["vmHealthContainerName"] == settings.DEFAULTS["VM_HEALTH_CONTAINER"]
    assert main_vars["vmHealthBlobName"] == settings.DEFAULTS["VM_HEALTH_BLOB"]
    # The VM puts its health file where the app reads it.
    vm_args = module_args("seiscompVm")
    assert vm_args["vmHealthContainerName"] == "vmHealthContainerName"
    assert vm_args["vmHealthBlobName"] == "vmHealthBlobName"
    assert (
        "'CCS_HEALTH_URL=https://${pipelineAccountName}.blob.${storageSuffix}/"
        "${vmHealthContainerName}/${vmHealthBlobName}'"
    ) in text(MODULES / "seiscomp-vm.bicep")
    # The names must be valid where the code validates them.
    for name in ("rawContainerName", "convertQueueName"):
        settings._storage_name(name, main[name])


def test_storage_declares_the_containers_queues_and_table() -> None:
    storage = text(MODULES / "storage.bicep")
    for resource, name in [
        ("containers", "rawContainerName"),
        ("containers", "deadLetterContainerName"),
        ("containers", "deploymentContainerName"),
        ("containers", "vmHealthContainerName"),
        ("queues", "convertQueueName"),
        ("queues", "'${convertQueueName}-poison'"),
        ("tables", "ledgerTableName"),
        ("shares", "shareName"),
    ]:
        assert re.search(
            rf"'Microsoft\.Storage/storageAccounts/\w+/{resource}@[^']+' = \{{\n"
            rf"\s+parent: \w+\n\s+name: {re.escape(name)}\n",
            storage,
        ), f"{resource} {name}"
    # The lifecycle rules only tier raw blobs down; nothing deletes raw data.
    raw_rule = re.sub(r"//.*", "", block(storage, "name: 'raw-to-cooler-tiers'"))
    assert "delete" not in raw_rule.lower()
    assert "tierToCool" in storage and "tierToArchive" in storage


def test_storage_accounts_are_hardened() -> None:
    storage = text(MODULES / "storage.bicep")
    accounts = re.findall(r"'Microsoft\.Storage/storageAccounts@[^']+' = \{", storage)
    assert len(accounts) == 3
    assert storage.count("minimumTlsVersion: 'TLS1_2'") == 3
    assert storage.count("supportsHttpsTrafficOnly: true") == 3
    assert storage.count("allowBlobPublicAccess: false") == 3
    # Only the share account keeps shared keys (SMB mounts need them).
    assert storage.count("allowSharedKeyAccess: false") == 2
    share = block(storage, "resource shareAccount ")
    assert "allowSharedKeyAccess: true" in share


# --- the share mount ------------------------------------------------------------------------------


def test_share_mount_path_is_share_root_and_the_vm_mount() -> None:
    main = params(INFRA / "main.bicep")
    assert main["shareMountPath"] == str(seiscomp.DEFAULT_SHARE_MOUNT)
    assert seiscomp.DEFAULT_MSEED_DIR == seiscomp.DEFAULT_SHARE_MOUNT / MSEED
    source = text(MODULES / "functionapp.bicep")
    mount = block(source, "resource shareMount ")
    assert "name: 'azurestorageaccounts'" in mount
    assert "type: 'AzureFiles'" in mount
    assert "mountPath: shareMountPath" in mount
    assert app_settings()["SHARE_ROOT"] == "shareMountPath"
    # The key comes from Key Vault through an app setting, never from a parameter.
    (infra_setting,) = INFRA_ONLY_SETTINGS
    assert variables(MODULES / "functionapp.bicep")["shareKeySetting"] == infra_setting
    assert "accessKey: '@AppSettingRef(${shareKeySetting})'" in mount
    assert app_settings()[infra_setting].startswith("'@Microsoft.KeyVault(SecretUri=")
    assert "listKeys" not in source
    assert module_args("seiscompVm")["shareMountPath"] == "shareMountPath"
    assert "'CCS_MOUNT=${shareMountPath}'" in text(MODULES / "seiscomp-vm.bicep")


def test_share_key_lives_only_in_key_vault() -> None:
    for path in INFRA.rglob("*.bicep"):
        if "listKeys" in text(path):
            assert path.name == "keyvault.bicep", path
    keyvault = text(MODULES / "keyvault.bicep")
    secret = block(keyvault, "resource shareKey ")
    assert "value: shareAccount.listKeys().keys[0].value" in secret
    for output in re.findall(r"^output .+$", keyvault, re.MULTILINE):
        assert "listKeys" not in output and ".value" not in output


# --- functions, triggers and Event Grid -------------------------------------------------------


def test_functions_and_bindings_match_the_infrastructure() -> None:
    functions = indexed_functions()
    assert {"decimate", "convert", "health", "status", "reconcile", "retention"} <= set(functions)
    bicep = app_settings()
    for name, bindings in functions.items():
        for binding in bindings:
            connection = binding.get("connection")
            if connection:
                assert any(s.startswith(f"{connection}__") for s in bicep), (name, connection)
            for value in binding.values():
                for setting in re.findall(r"%(\w+)%", str(value)):
                    assert setting in bicep, (name, setting)
    (trigger,) = [b for b in functions["convert"] if b["type"] == "queueTrigger"]
    assert trigger["queueName"] == "%CONVERT_QUEUE%"
    assert trigger["connection"] == settings.STORAGE_CONNECTION


def decorated_bounds(name: str) -> tuple[int, int]:
    """@minValue / @maxValue of a main.bicep parameter."""
    m = re.search(
        rf"@minValue\((\d+)\)\n@maxValue\((\d+)\)\nparam {name} ", text(INFRA / "main.bicep")
    )
    assert m, f"{name} has no @minValue/@maxValue"
    return int(m[1]), int(m[2])


def test_always_ready_instances_are_a_parameter_for_the_functions_on_a_files_path() -> None:
    # Plumbed main.bicepparam -> main.bicep -> functionapp.bicep; scale to zero by default.
    assert params(INFRA / "main.bicep")["alwaysReadyInstances"] == 0
    assert re.search(r"^param alwaysReadyInstances = \d+$", text(INFRA / "main.bicepparam"), re.M)
    assert module_args("functionApp")["alwaysReadyInstances"] == "alwaysReadyInstances"
    assert "alwaysReadyInstances" in params(MODULES / "functionapp.bicep")
    module = text(MODULES / "functionapp.bicep")
    listed = re.search(r"^var pipelineFunctions = \[(.*?)^\]", module, re.M | re.S)
    assert listed
    names = re.findall(r"'(\w+)'", listed[1])
    # Exactly the functions a file passes through (its Event Grid and queue triggers), as the
    # host indexes them: per-function scaling names them 'function:<name>'; none of them is in
    # the http/blob/durable groups.
    on_path = {
        name
        for name, bindings in indexed_functions().items()
        if any(b["type"] in ("eventGridTrigger", "queueTrigger") for b in bindings)
    }
    assert sorted(names) == sorted(on_path) == ["convert", "decimate"]
    config = block(module, "var alwaysReady = [for fn in pipelineFunctions:")
    assert "name: 'function:${fn}'" in config
    assert "instanceCount: alwaysReadyInstances" in config
    scale = block(module, "scaleAndConcurrency:")
    assert "alwaysReady: alwaysReadyInstances > 0 ? alwaysReady : []" in scale
    # All always-ready instances fit under the smallest allowed maximumInstanceCount.
    low, high = decorated_bounds("alwaysReadyInstances")
    assert low == 0
    assert len(names) * high <= decorated_bounds("maximumInstanceCount")[0]


def test_queue_polling_interval_is_set_deliberately_and_documented() -> None:
    from scripts.local_host import max_polling_interval, parse_timespan

    raw = json.loads(text(ROOT / "host.json"))["extensions"]["queues"]["maxPollingInterval"]
    assert parse_timespan(raw) == max_polling_interval() < 60.0  # under the host's default
    for doc in (ROOT / "README.md", ROOT / "docs" / "deployment.md"):
        assert "maxPollingInterval" in text(doc) and raw in text(doc), doc
    assert "alwaysReadyInstances" in text(ROOT / "docs" / "deployment.md")


def test_event_grid_subscription_targets_the_event_grid_function() -> None:
    functions = indexed_functions()
    event_grid = [
        name
        for name, bindings in functions.items()
        if any(b["type"] == "eventGridTrigger" for b in bindings)
    ]
    args = module_args("eventing")
    assert event_grid == [literal(args["functionName"])]
    assert args["deployEventSubscription"] == "deployEventSubscription"
    assert params(INFRA / "main.bicep")["deployEventSubscription"] is False
    eventing = text(MODULES / "eventing.bicep")
    subscription = block(eventing, "resource blobCreated ")
    assert "= if (deployEventSubscription)" in eventing
    assert "endpointType: 'AzureFunction'" in subscription
    assert "resourceId: '${site.id}/functions/${functionName}'" in subscription
    assert "'Microsoft.Storage.BlobCreated'" in subscription
    assert "subjectBeginsWith: '/blobServices/default/containers/${rawContainerName}/'" in (
        subscription
    )
    assert "retryPolicy" in subscription
    assert "blobContainerName: deadLetterContainerName" in subscription
    assert args["rawContainerName"] == "rawContainerName"
    assert args["deadLetterContainerName"] == "deadLetterContainerName"


def test_deploy_script_creates_the_subscription_after_the_code() -> None:
    deploy = text(INFRA / "deploy.sh")
    first = deploy.index("--parameters deployEventSubscription=false")
    publish = deploy.index("az functionapp deployment source config-zip")
    indexed = deploy.index("until function_indexed")
    second = deploy.index("--parameters deployEventSubscription=true")
    assert first < publish < indexed < second
    assert "--function-name decimate" in deploy
    assert "az deployment group what-if" in deploy
    assert "python -m shared_code.seiscomp" in deploy.replace('"$PYTHON"', "python")
    # The package carries what the app reads at run time, FIELDS_CONFIG included.
    zip_line = next(line for line in deploy.splitlines() if "zip -q -r" in line)
    for part in ("function_app.py", "host.json", "requirements.txt", "functions", "shared_code"):
        assert part in zip_line
    assert FIELDS_CONFIG.split("/")[0] in zip_line


# --- runtime ------------------------------------------------------------------------------------


def test_python_version_and_extension_bundle() -> None:
    pyproject = tomllib.loads(text(ROOT / "pyproject.toml"))
    version = pyproject["tool"]["mypy"]["python_version"]
    assert pyproject["project"]["requires-python"] == f">={version}"
    assert params(INFRA / "main.bicep")["pythonVersion"] == version
    runtime = block(text(MODULES / "functionapp.bicep"), "runtime:")
    assert "name: 'python'" in runtime and "version: pythonVersion" in runtime
    assert "kind: 'functionapp,linux'" in text(MODULES / "functionapp.bicep")
    assert "tier: 'FlexConsumption'" in text(MODULES / "functionapp.bicep")
    host = json.loads(text(ROOT / "host.json"))
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"


# --- roles --------------------------------------------------------------------------------------


def test_roles_are_least_privilege() -> None:
    source = text(MODULES / "functionapp.bicep")
    declared = dict(re.findall(r"^\s+(\w+): '([0-9a-f-]{36})'$", block(source, "var roles"), re.M))
    assert declared == {k: BUILT_IN_ROLES[k] for k in declared}
    # tests/test_infra_roles.py derives these from the code's storage calls.
    assert role_assignments(MODULES / "functionapp.bicep") == {
        ("hostAccount", "blobDataOwner"),
        ("hostAccount", "tableDataContributor"),
        ("pipelineAccount::blobService::raw", "blobDataReader"),
        ("pipelineAccount::blobService::vmHealth", "blobDataReader"),
        ("pipelineAccount::queueService::convert", "queueDataContributor"),
        ("pipelineAccount::queueService::convertPoison", "queueDataReader"),
        ("pipelineAccount::queueService::convertPoison", "queueDataMessageSender"),
        ("pipelineAccount::tableService::ledger", "tableDataContributor"),
        ("vault::shareKey", "keyVaultSecretsUser"),
    }
    vm = role_assignments(MODULES / "seiscomp-vm.bicep")
    assert vm == {
        ("vault::shareKey", "keyVaultSecretsUser"),
        ("pipelineAccount::blobService::bindings", "blobDataReader"),
        # Writes its health file, in its own container only: never the bindings it reads.
        ("pipelineAccount::blobService::vmHealth", "blobDataContributor"),
    }
    vm_source = text(MODULES / "seiscomp-vm.bicep")
    assert "name: vmHealthContainerName" in block(vm_source, "resource vmHealth ")
    assert "name: bindingsContainerName" in block(vm_source, "resource bindings ")


# --- monitoring -----------------------------------------------------------------------------------


def test_alerts_use_the_telemetry_names_of_the_code() -> None:
    alerts = text(MODULES / "alerts.bicep")
    assert f'name == "{telemetry.MINISEED_FILES_WRITTEN}"' in alerts
    assert "customDimensions.field" in alerts
    assert f'name == "{telemetry.POISON_QUEUE_DEPTH}"' in alerts
    assert module_args("alerts")["poisonQueueName"] == "'${convertQueueName}-poison'"
    assert alerts.count("'Microsoft.Insights/scheduledQueryRules@") == 3
    assert "windowSize: 'PT${noMiniseedWindowMinutes}M'" in alerts


def test_field_names_follow_the_field_configuration() -> None:
    fields = sorted(tomllib.loads(text(ROOT / FIELDS_CONFIG))["fields"])
    example = re.search(r"param fieldNames = \[(.*?)\]", text(INFRA / "main.bicepparam"), re.S)
    assert example
    assert sorted(re.findall(r"'([^']+)'", example[1])) == fields
    assert "tomllib" in text(INFRA / "deploy.sh") and '"fieldNames=$FIELD_NAMES"' in text(
        INFRA / "deploy.sh"
    )


# --- secrets and the VM -------------------------------------------------------------------------


def test_no_secret_is_an_output_or_a_plain_parameter() -> None:
    for path in INFRA.rglob("*.bicep"):
        for name, value in re.findall(r"^output (\w+) \w+ = (.+)$", text(path), re.MULTILINE):
            if path.name == "monitoring.bicep" and name == "appInsightsConnectionString":
                continue  # ingestion endpoint + key: identifies the resource, cannot read from it
            assert not re.search(r"(?i)listKeys|keys\[|primaryKey|ConnectionString", value), name
    for name in re.findall(r"^output (\w+) ", text(INFRA / "main.bicep"), re.MULTILINE):
        assert not re.search(r"(?i)key|secret|password|connection", name), name
    main_params = params(INFRA / "main.bicep")
    assert not [p for p in main_params if re.search(r"(?i)password|secret(?!s)|privatekey", p)]
    assert "disablePasswordAuthentication: true" in text(MODULES / "seiscomp-vm.bicep")


@pytest.mark.parametrize(
    ("rule", "needle"),
    [
        ("allow-ssh-from-admins", "sourceAddressPrefixes: adminCidrs"),
        ("allow-wireguard-from-peers", "sourceAddressPrefixes: wireguardPeerSourceCidrs"),
        ("allow-seedlink-from-wireguard-subnet", "sourceAddressPrefix: wireguardSubnet"),
    ],
)
def test_vm_network_exposure(rule: str, needle: str) -> None:
    network = text(MODULES / "network.bicep")
    body = block(network, f"name: '{rule}'")
    assert needle in body
    assert "'*'" not in re.findall(r"sourceAddressPrefix(?:es)?: (.+)", body)


def test_cloud_init_applies_the_generated_bindings() -> None:
    cloud_init = text(INFRA / "cloud-init" / "seiscomp.yaml")
    assert f"profile_{seiscomp.PROFILE}" in cloud_init
    assert "etc/key/station_* | etc/key/seedlink/profile_* | streams.txt" in cloud_init
    assert seiscomp.STREAMS_FILE == "streams.txt"
    assert "vers=3.1.1,seal" in cloud_init and "ro," in cloud_init
    assert 'seiscomp" enable seedlink' in cloud_init
    vm = text(MODULES / "seiscomp-vm.bicep")
    assert "loadFileAsBase64('../cloud-init/seiscomp.yaml')" in vm
    assert "'CCS_BINDINGS_URL=https://${pipelineAccountName}.blob" in vm
    main = text(INFRA / "main.bicep")
    assert "var bindingsBlobName = 'bindings.tar.gz'" in main
