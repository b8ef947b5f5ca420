"""One identity for a blob version: its ETag in a single canonical form.

A blob version's ETag reaches the app in two spellings. Event Grid's ``data.eTag`` carries it
bare (``0x8D4BCC2E4835CD0`` in Microsoft's ``Microsoft.Storage.BlobCreated`` example,
https://learn.microsoft.com/azure/event-grid/event-schema-blob-storage), while the ETag
*header*, and so the blob SDK's ``BlobProperties.etag``, is an HTTP entity-tag in quotes
(``"0x8D..."``). Every place where an ETag enters (event parsing in both schemas, the SDK's
properties in redrive and reconcile, failure records, queue messages, the CLI) passes it
through :func:`canonical_etag`, so that seam claims (``blob@etag``), ledger rows and failure
records name a version identically; :func:`wire_etag` gives the quoted form back where the
value goes onto the wire as a condition.
"""

from __future__ import annotations


def canonical_etag(etag: str | None) -> str:
    """The ETag bare: without surrounding whitespace, quotes or the weak ``W/`` prefix
    (``'"0x8D1"'``, ``'W/"0x8D1"'`` and ``'0x8D1'`` are all ``'0x8D1'``; None is '')."""
    value = (etag or "").strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def wire_etag(etag: str | None) -> str:
    """The ETag as an If-Match / If-None-Match header value: quoted (RFC 9110 entity-tag).

    The blob SDK sends its ``etag=`` condition verbatim (azure-storage-blob
    ``_serialize._get_match_headers``), and Blob Storage takes the ETag "in quotes" for
    service versions 2011-08-18 and newer (https://learn.microsoft.com/rest/api/
    storageservices/specifying-conditional-headers-for-blob-service-operations). '' stays ''.
    """
    bare = canonical_etag(etag)
    return f'"{bare}"' if bare else ""
