"""Blob-created events exactly as Azure Storage publishes them, copied from Microsoft's docs.

EVENT_GRID_EXAMPLE: the ``Microsoft.Storage.BlobCreated`` example in the Event Grid schema,
https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage ("Example event").
CLOUD_EVENT_EXAMPLE: the Blob Storage event in the CloudEvents 1.0 schema,
https://learn.microsoft.com/azure/event-grid/cloud-event-schema ("Sample event using
CloudEvents schema"). Both carry ``data.eTag`` bare, without the quotes of the ETag header.

:func:`like_azure` fills the Event Grid example with a real blob's values, so a test delivers
what Event Grid would deliver for a blob uploaded to Azurite.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any
from urllib.parse import quote

EVENT_GRID_EXAMPLE: dict[str, Any] = {
    "topic": "/subscriptions/{subscription-id}/resourceGroups/Storage/providers/"
    "Microsoft.Storage/storageAccounts/xstoretestaccount",
    "subject": "/blobServices/default/containers/testcontainer/blobs/testfile.txt",
    "eventType": "Microsoft.Storage.BlobCreated",
    "eventTime": "2017-06-26T18:41:00.9584103Z",
    "id": "831e1650-001e-001b-66ab-eeb76e069631",
    "data": {
        "api": "PutBlockList",
        "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
        "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
        "eTag": "0x8D4BCC2E4835CD0",
        "contentType": "text/plain",
        "contentLength": 524288,
        "blobType": "BlockBlob",
        "url": "https://example.blob.core.windows.net/testcontainer/testfile.txt",
        "sequencer": "00000000000004420000000000028963",
        "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"},
    },
    "dataVersion": "",
    "metadataVersion": "1",
}  # fmt: skip

CLOUD_EVENT_EXAMPLE: dict[str, Any] = {
    "specversion": "1.0",
    "type": "Microsoft.Storage.BlobCreated",
    "source": "/subscriptions/{subscription-id}/resourceGroups/{resource-group}/providers/"
    "Microsoft.Storage/storageAccounts/{storage-account}",
    "id": "9aeb0fdf-c01e-0131-0922-9eb54906e209",
    "time": "2019-11-18T15:13:39.4589254Z",
    "subject": "blobServices/default/containers/{storage-container}/blobs/{new-file}",
    "dataschema": "#",
    "data": {
        "api": "PutBlockList",
        "clientRequestId": "4c5dd7fb-2c48-4a27-bb30-5361b5de920a",
        "requestId": "9aeb0fdf-c01e-0131-0922-9eb549000000",
        "eTag": "0x8D76C39E4407333",
        "contentType": "image/png",
        "contentLength": 30699,
        "blobType": "BlockBlob",
        "url": "https://gridtesting.blob.core.windows.net/testcontainer/{new-file}",
        "sequencer": "000000000000000000000000000099240000000000c41c18",
        "storageDiagnostics": {"batchId": "681fe319-3006-00a8-0022-9e7cde000000"},
    },
}  # fmt: skip

#: The documented example's ETag, for events of blobs that tests never upload.
DOC_ETAG: str = EVENT_GRID_EXAMPLE["data"]["eTag"]


def like_azure(
    account_url: str, container: str, blob_name: str, sdk_etag: str, size: int
) -> dict[str, Any]:
    """Microsoft's Event Grid example for this blob: ``sdk_etag`` is the SDK's
    ``BlobProperties.etag`` (the ETag header, quoted), which Event Grid sends bare."""
    assert sdk_etag.startswith('"') and sdk_etag.endswith('"'), sdk_etag
    event = copy.deepcopy(EVENT_GRID_EXAMPLE)
    event["id"] = str(uuid.uuid4())
    event["subject"] = f"/blobServices/default/containers/{container}/blobs/{blob_name}"
    event["data"]["eTag"] = sdk_etag[1:-1]
    event["data"]["contentLength"] = size
    event["data"]["contentType"] = "application/octet-stream"
    event["data"]["url"] = f"{account_url.rstrip('/')}/{container}/{quote(blob_name, safe='/')}"
    return event
