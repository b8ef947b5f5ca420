"""The function app's data roles are exactly what its storage calls need, scope by scope.

How the mapping is derived, in three published steps:

1. SDK call -> REST operation: every method of the azure-storage-blob / -queue / azure-data-tables
   clients that ``shared_code`` calls (found by AST, against the SDK classes' own method names) is
   mapped to the Storage REST operation it sends (the SDK method docstrings name it).
2. REST operation -> RBAC permission: "Permissions for calling data operations"
   (https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory
   #permissions-for-calling-data-operations); where it lists alternatives ("add/action or
   write") any one suffices.
3. Built-in role -> permissions: "Azure built-in roles for Storage"
   (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage), the
   Actions and DataActions of each role, copied below.

The Functions host's own calls (queue trigger, poison queue, host storage) are not in our code;
they come from the Functions documentation, cited where they are listed.

The test then requires, for every scope the Bicep assigns roles on: the assigned roles grant
every operation used there, and no other combination of built-in roles does so with fewer
permissions (so nothing broader than needed is granted, and no role is redundant).
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from fnmatch import fnmatchcase
from pathlib import Path

from tests.test_infra_contract import MODULES, block, role_assignments, text

ROOT = Path(__file__).resolve().parent.parent
SA = "Microsoft.Storage/storageAccounts/"

# --- 3. built-in roles (Actions + DataActions, built-in-roles/storage) ---------------------------

ROLE_PERMISSIONS: dict[str, set[str]] = {
    "blobDataReader": {
        "blobServices/containers/read",
        "blobServices/generateUserDelegationKey/action",
        "blobServices/containers/blobs/read",
    },
    "blobDataContributor": {
        "blobServices/containers/delete",
        "blobServices/containers/read",
        "blobServices/containers/write",
        "blobServices/generateUserDelegationKey/action",
        "blobServices/containers/blobs/delete",
        "blobServices/containers/blobs/read",
        "blobServices/containers/blobs/write",
        "blobServices/containers/blobs/move/action",
        "blobServices/containers/blobs/add/action",
    },
    "blobDataOwner": {
        "blobServices/containers/*",
        "blobServices/generateUserDelegationKey/action",
        "blobServices/containers/blobs/*",
    },
    "queueDataReader": {"queueServices/queues/read", "queueServices/queues/messages/read"},
    "queueDataMessageSender": {"queueServices/queues/messages/add/action"},
    "queueDataMessageProcessor": {
        "queueServices/queues/messages/read",
        "queueServices/queues/messages/process/action",
    },
    "queueDataContributor": {
        "queueServices/queues/delete",
        "queueServices/queues/read",
        "queueServices/queues/write",
        "queueServices/queues/messages/delete",
        "queueServices/queues/messages/read",
        "queueServices/queues/messages/write",
        "queueServices/queues/messages/process/action",
    },
    "tableDataReader": {"tableServices/tables/read", "tableServices/tables/entities/read"},
    "tableDataContributor": {
        "tableServices/tables/read",
        "tableServices/tables/write",
        "tableServices/tables/delete",
        "tableServices/tables/entities/read",
        "tableServices/tables/entities/write",
        "tableServices/tables/entities/delete",
        "tableServices/tables/entities/add/action",
        "tableServices/tables/entities/update/action",
    },
}
ROLE_IDS = {  # the same page, "id"
    "blobDataReader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "blobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "blobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "queueDataReader": "19e7f393-937e-4f77-808e-94535e297925",
    "queueDataMessageSender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "queueDataMessageProcessor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
    "queueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "tableDataReader": "76199698-9eea-4c19-bc75-cec21354c6b6",
    "tableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
}

# --- 2. REST operation -> permission alternatives (any one set suffices) -------------------------

REST_PERMISSIONS: dict[str, list[set[str]]] = {
    "Get Blob": [{"blobServices/containers/blobs/read"}],
    "Get Blob Properties": [{"blobServices/containers/blobs/read"}],
    "List Blobs": [{"blobServices/containers/blobs/read"}],
    "Get Container Properties": [{"blobServices/containers/read"}],
    "Put Message": [
        {"queueServices/queues/messages/add/action"},
        {"queueServices/queues/messages/write"},
    ],
    "Get Messages": [
        {"queueServices/queues/messages/process/action"},
        {"queueServices/queues/messages/delete", "queueServices/queues/messages/read"},
    ],
    "Delete Message": [
        {"queueServices/queues/messages/process/action"},
        {"queueServices/queues/messages/delete"},
    ],
    "Update Message": [{"queueServices/queues/messages/write"}],
    "Get Queue Metadata": [{"queueServices/queues/read"}],
    "Peek Messages": [{"queueServices/queues/messages/read"}],
    "Create Table": [{"tableServices/tables/write"}],
    "Query Entities": [{"tableServices/tables/entities/read"}],
    "Insert Entity": [
        {"tableServices/tables/entities/write"},
        {"tableServices/tables/entities/add/action"},
    ],
    "Update Entity": [
        {"tableServices/tables/entities/write"},
        {"tableServices/tables/entities/update/action"},
    ],
    "Insert Or Merge Entity": [
        {"tableServices/tables/entities/write"},
        {"tableServices/tables/entities/add/action", "tableServices/tables/entities/update/action"},
    ],
}

# --- 1. SDK method -> REST operation ------------------------------------------------------------

SDK_OPERATIONS = {
    "download_blob": "Get Blob",
    "get_blob_properties": "Get Blob Properties",
    "list_blobs": "List Blobs",
    "get_container_properties": "Get Container Properties",
    "send_message": "Put Message",
    "get_queue_properties": "Get Queue Metadata",
    "peek_messages": "Peek Messages",
    "create_table": "Create Table",
    "create_entity": "Insert Entity",
    "get_entity": "Query Entities",
    "query_entities": "Query Entities",
    "list_entities": "Query Entities",
    # UpdateMode.MERGE sends Merge Entity, REPLACE Update Entity: the same permissions.
    "update_entity": "Update Entity",
    "upsert_entity": "Insert Or Merge Entity",
}

#: Where each call goes: (module.function, SDK method) -> the Bicep scope of the resource it
#: targets. The test checks this list against the code both ways (nothing missing, nothing stale).
APP_CALLS: dict[tuple[str, str], str] = {
    ("storage.download_blob", "download_blob"): "pipelineAccount::blobService::raw",
    ("storage.download_blob", "get_blob_properties"): "pipelineAccount::blobService::raw",
    ("pipeline.redrive_blob", "get_blob_properties"): "pipelineAccount::blobService::raw",
    ("reconcile.find_unfinished", "list_blobs"): "pipelineAccount::blobService::raw",
    ("health.check_blob", "get_container_properties"): "pipelineAccount::blobService::raw",
    ("vm_health.read_vm_health", "download_blob"): "pipelineAccount::blobService::vmHealth",
    ("pipeline.handle_blob_created", "send_message"): "pipelineAccount::queueService::convert",
    ("pipeline.replay_failure_record", "send_message"): "pipelineAccount::queueService::convert",
    ("health.check_queue", "get_queue_properties"): "pipelineAccount::queueService::convert",
    ("reconcile.poison_queue_depth", "get_queue_properties"): (
        "pipelineAccount::queueService::convertPoison"
    ),
    ("reconcile.poison_messages", "peek_messages"): "pipelineAccount::queueService::convertPoison",
    ("ledger.Ledger.begin", "create_entity"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger.begin", "get_entity"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger.begin", "update_entity"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger._merge", "upsert_entity"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger.get", "get_entity"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger.query", "query_entities"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger.query", "list_entities"): "pipelineAccount::tableService::ledger",
    ("ledger.Ledger.summary", "list_entities"): "pipelineAccount::tableService::ledger",
    ("health.check_table", "query_entities"): "pipelineAccount::tableService::ledger",
}
#: Calls that never run in Azure: the ledger creates its table only with a connection string
#: (Azurite); tests/test_ledger.py shows it does not with identity-based settings.
LOCAL_ONLY_CALLS = {("ledger.Ledger.ensure_table", "create_table")}

#: The Functions host's own calls on the pipeline account, for our queue trigger
#: (functions/convert.py), as Azure/azure-sdk-for-net's Microsoft.Azure.WebJobs.Extensions.
#: Storage.Queues QueueProcessor makes them: receive, delete, release a failed message
#: (ReleaseMessageAsync -> UpdateMessageAsync), read the queue length (scaling); after
#: maxDequeueCount, CopyMessageToPoisonQueueAsync -> AddMessageAndCreateIfNotExistsAsync, which
#: sends first and creates <queue>-poison only on QueueNotFound (it is declared in the Bicep).
HOST_CALLS: dict[str, set[str]] = {
    "pipelineAccount::queueService::convert": {
        "Get Messages", "Delete Message", "Update Message", "Get Queue Metadata",
    },
    "pipelineAccount::queueService::convertPoison": {"Put Message"},
}  # fmt: skip

#: Host storage (AzureWebJobsStorage): roles as the Functions docs state them, not derived here.
#: "Storage Blob Data Owner covers the basic needs of Functions host storage" ("Connecting to host
#: storage with an identity"); diagnostic events need "read, write, delete, add and create" in
#: Table Storage (AZFD0003): Storage Table Data Contributor at account scope. The host uses this
#: account's queues only for blob triggers (functions-blob-permissions), and the app has none.
HOST_STORAGE_ROLES = {("hostAccount", "blobDataOwner"), ("hostAccount", "tableDataContributor")}

#: Client methods that send no request (constructors, local state). ``exists`` is also a
#: pathlib method, which shared_code calls on the share; no SDK client's ``exists`` is called.
NOT_REQUESTS = re.compile(r"^(get_\w+_client|from_\w+|close|exists)$")


def sdk_method_names() -> set[str]:
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient
    from azure.storage.queue import QueueClient, QueueServiceClient

    classes = (BlobServiceClient, ContainerClient, BlobClient, QueueServiceClient, QueueClient,
               TableServiceClient, TableClient)  # fmt: skip
    return {
        name
        for cls in classes
        for name, _ in inspect.getmembers(cls, callable)
        if not name.startswith("_") and not NOT_REQUESTS.match(name)
    }


def sdk_calls_in_code() -> set[tuple[str, str]]:
    """(module.function, method) of every SDK request method called in shared_code."""
    methods = sdk_method_names()
    found: set[tuple[str, str]] = set()

    def walk(node: ast.AST, module: str, stack: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                walk(child, module, [*stack, child.name])
                continue
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr in methods
            ):
                found.add((".".join([module, *stack]), child.func.attr))
            walk(child, module, stack)

    for path in sorted((ROOT / "shared_code").rglob("*.py")):
        walk(ast.parse(path.read_text(encoding="utf-8")), path.stem, [])
    return found


def required_operations() -> dict[str, set[str]]:
    need: dict[str, set[str]] = {scope: set(ops) for scope, ops in HOST_CALLS.items()}
    for (_, method), scope in APP_CALLS.items():
        need.setdefault(scope, set()).add(SDK_OPERATIONS[method])
    return need


def grants(permissions: set[str], wanted: str) -> bool:
    return any(fnmatchcase(wanted, pattern) for pattern in permissions)


def covers(roles: tuple[str, ...] | set[str], operations: set[str]) -> bool:
    held = set().union(*(ROLE_PERMISSIONS[r] for r in roles))
    return all(
        any(all(grants(held, p) for p in option) for option in REST_PERMISSIONS[op])
        for op in operations
    )


def size(roles: tuple[str, ...] | set[str]) -> int:
    """Permissions granted, a wildcard counting as more than any explicit list of its kind."""
    held = set().union(*(ROLE_PERMISSIONS[r] for r in roles))
    return sum(100 if "*" in p else 1 for p in held)


def service_of(scope: str) -> str:
    return {"blobService": "blob", "queueService": "queue", "tableService": "table"}[
        scope.split("::")[1]
    ]


# --- tests ---------------------------------------------------------------------------------------


def test_every_storage_call_in_the_code_is_mapped_to_a_scope() -> None:
    calls = sdk_calls_in_code()
    assert calls == set(APP_CALLS) | LOCAL_ONLY_CALLS
    assert {method for _, method in calls} <= set(SDK_OPERATIONS)


def test_role_definitions_are_the_built_in_ones() -> None:
    declared = dict(
        re.findall(
            r"^\s+(\w+): '([0-9a-f-]{36})'$",
            block(text(MODULES / "functionapp.bicep"), "var roles"),
            re.M,
        )
    )
    storage_roles = {k: v for k, v in declared.items() if k in ROLE_IDS}
    assert storage_roles == {k: ROLE_IDS[k] for k in storage_roles}


def test_assigned_roles_are_the_least_cover_of_what_each_scope_uses() -> None:
    assigned = role_assignments(MODULES / "functionapp.bicep")
    need = required_operations()
    by_scope: dict[str, set[str]] = {}
    for scope, role in assigned:
        if scope.startswith("pipelineAccount"):
            by_scope.setdefault(scope, set()).add(role)
    # A role on every scope the app or the host uses, and on nothing else of the pipeline account.
    assert set(by_scope) == set(need)
    for scope, operations in need.items():
        roles = by_scope[scope]
        assert covers(roles, operations), f"{scope}: {sorted(roles)} lack some of {operations}"
        candidates = [r for r in ROLE_PERMISSIONS if r.startswith(service_of(scope))]
        best = min(
            size(combo)
            for n in range(1, len(candidates) + 1)
            for combo in itertools.combinations(candidates, n)
            if covers(combo, operations)
        )
        assert size(roles) == best, f"{scope}: {sorted(roles)} grant more than {operations} need"
        for role in roles:  # and none is redundant
            assert not covers(roles - {role}, operations), f"{scope}: {role} is not needed"


def test_host_storage_roles_are_the_documented_ones() -> None:
    assigned = role_assignments(MODULES / "functionapp.bicep")
    assert {a for a in assigned if a[0] == "hostAccount"} == HOST_STORAGE_ROLES
