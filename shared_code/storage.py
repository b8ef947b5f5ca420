"""Blob, queue and table clients, from a connection string (Azurite) or a managed identity.

Azure SDK imports stay inside the functions: importing azure.storage.blob costs ~0.4 s, and
not every invocation needs every client.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared_code.etags import canonical_etag, wire_etag
from shared_code.settings import Settings, StorageConnection

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueClient, QueueServiceClient

#: Bytes per ranged GET when streaming a blob to disk: memory stays bounded by this, whatever
#: the blob's size.
DOWNLOAD_CHUNK_BYTES = 8 * 1024 * 1024


class BlobChangedError(RuntimeError):
    """The blob's ETag no longer matches the event's: a newer version has its own event."""


class BlobDeletedError(RuntimeError):
    """The blob no longer exists: it was deleted before it could be read (a permanent fate of
    that version, not a storage outage)."""


def _credential(conn: StorageConnection) -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=conn.client_id)


def blob_service(conn: StorageConnection) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    if conn.connection_string:
        return BlobServiceClient.from_connection_string(
            conn.connection_string, max_single_get_size=DOWNLOAD_CHUNK_BYTES,
            max_chunk_get_size=DOWNLOAD_CHUNK_BYTES,
        )  # fmt: skip
    assert conn.blob_service_uri
    return BlobServiceClient(
        conn.blob_service_uri, credential=_credential(conn),
        max_single_get_size=DOWNLOAD_CHUNK_BYTES, max_chunk_get_size=DOWNLOAD_CHUNK_BYTES,
    )  # fmt: skip


def queue_service(conn: StorageConnection) -> QueueServiceClient:
    from azure.storage.queue import QueueServiceClient

    if conn.connection_string:
        return QueueServiceClient.from_connection_string(conn.connection_string)
    assert conn.queue_service_uri
    return QueueServiceClient(conn.queue_service_uri, credential=_credential(conn))


def table_service(conn: StorageConnection) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    if conn.connection_string:
        return TableServiceClient.from_connection_string(conn.connection_string)
    assert conn.table_service_uri
    return TableServiceClient(conn.table_service_uri, credential=_credential(conn))


def convert_queue(settings: Settings) -> QueueClient:
    """The convert queue, base64-encoding messages as the host's queue trigger decodes them."""
    return queue_client(settings.storage, settings.convert_queue)


def queue_client(conn: StorageConnection, name: str) -> QueueClient:
    """A queue client that base64-encodes (the host's default ``messageEncoding``)."""
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    if conn.connection_string:
        return QueueClient.from_connection_string(
            conn.connection_string, name, message_encode_policy=encode, message_decode_policy=decode
        )
    assert conn.queue_service_uri
    return QueueClient(
        conn.queue_service_uri, name, credential=_credential(conn),
        message_encode_policy=encode, message_decode_policy=decode,
    )  # fmt: skip


def download_blob(settings: Settings, container: str, blob_name: str, etag: str, dest: Path) -> int:
    """Stream a blob to ``dest`` in ranged chunks; returns its size in bytes.

    With a non-empty ``etag`` the read is conditional on it, so every chunk comes from the
    version the event announced. A read that fails as changed (412) or missing (404) is told
    apart by the blob's current properties, because the answer's status alone does not say:
    Azurite answers a conditional read of a deleted blob with 412, Azure may answer 404. The
    blob gone raises BlobDeletedError; another ETag raises BlobChangedError.
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    client = blob_service(settings.storage).get_blob_client(container, blob_name)
    kwargs: dict[str, Any] = {"max_concurrency": 1}
    if etag:
        kwargs.update(etag=wire_etag(etag), match_condition=MatchConditions.IfNotModified)
    try:
        downloader = client.download_blob(**kwargs)
        with open(dest, "wb") as fh:
            size = downloader.readinto(fh)
    except (ResourceModifiedError, ResourceNotFoundError):
        try:
            current = canonical_etag(str(client.get_blob_properties().etag))
        except ResourceNotFoundError:
            raise BlobDeletedError(
                f"blob {container}/{blob_name}: source deleted before it was read "
                f"(ETag {canonical_etag(etag) or 'any'})"
            ) from None
        if etag and current != canonical_etag(etag):
            raise BlobChangedError(
                f"blob {container}/{blob_name}: changed since event (ETag {etag} no longer "
                f"current, now {current})"
            ) from None
        raise  # the same version still there: whatever failed, it was not the blob's fate
    return int(size)


def copy_local(src: Path, dest: Path) -> int:
    """The local-file counterpart of download_blob (CLI): copy and return the size in bytes."""
    shutil.copyfile(src, dest)
    return dest.stat().st_size
