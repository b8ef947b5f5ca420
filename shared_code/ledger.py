"""The ledger: one Azure Table row per raw file version (blob name + ETag) and its fate.

States: ``received`` (decimate claimed it) -> ``decimated`` (the ConvertRequest is queued) ->
``converted`` (MiniSEED visible on the share), or ``failed`` (``stage`` and ``reason`` say
where and why; ``failure_path`` is the replayable record on the share, ``event`` or
``message`` the failed input itself, so a failure stays replayable when the share could not take
its record), or ``superseded`` (a newer version of the blob replaced this one before it was
read), or ``deleted`` (the blob was deleted before it was read: "source deleted").

Keys: PartitionKey is the field (queries per field stay in one partition); RowKey is
``share_layout.blob_key(blob, etag)``, a file-name-safe key, because Table keys forbid
``/ \\ # ?`` and control characters that blob names may hold.

Idempotency: :meth:`Ledger.begin` is an atomic claim. ``create_entity`` fails if the row exists,
and a takeover of an existing row is an update conditional on the row's ETag (optimistic
concurrency), so of two racing deliveries of the same blob version exactly one wins.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared_code.etags import canonical_etag
from shared_code.share_layout import blob_key

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from shared_code.settings import Settings

log = logging.getLogger(__name__)

RECEIVED = "received"
DECIMATED = "decimated"
CONVERTED = "converted"
FAILED = "failed"
#: A newer version of the blob appeared before decimate read this one; that version has its
#: own row and event, this one is done with (neither an error nor a file to re-drive).
SUPERSEDED = "superseded"
#: The blob was deleted before decimate read this version: nothing left to process or replay,
#: but unlike ``superseded`` no newer version exists; an operator sees it in ``status``.
SOURCE_DELETED = "deleted"
STATES = (RECEIVED, DECIMATED, CONVERTED, FAILED, SUPERSEDED, SOURCE_DELETED)

#: Seconds a ``received`` claim protects a file from a duplicate delivery; longer than the
#: function timeout (host.json ``functionTimeout``, 10 min) so a running decimate is never
#: doubled, short enough that a crashed one is retried by the next delivery or reconciliation.
DEFAULT_LEASE_SECONDS = 15 * 60

#: Characters kept of a failure reason (a Table string property holds at most 32 K characters).
MAX_REASON_CHARS = 4000

#: Characters of a failed event or queue message kept in its row. A Table String property is
#: UTF-16 of at most 64 KiB, i.e. 32 768 characters, and an entity at most 1 MiB in all
#: ("Property types" and "Property limitations" in
#: https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model);
#: Event Grid events and ConvertRequests are a few KiB, so this leaves ample margin.
MAX_INPUT_CHARS = 30_000

_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_CLAIM_RETRIES = 5


def row_key(blob: str, etag: str) -> str:
    """The RowKey for a blob version: safe for Table keys whatever the blob name holds."""
    return blob_key(blob, canonical_etag(etag))


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _row(entity: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready dict of a ledger entity (timestamps ISO 8601, ``mseed_paths`` a list)."""
    row = {
        "field": entity.get("PartitionKey", ""),
        "key": entity.get("RowKey", ""),
    }
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        row[name] = _iso(value)
    paths = row.get("mseed_paths")
    if isinstance(paths, str):
        try:
            row["mseed_paths"] = json.loads(paths) if paths else []
        except ValueError:
            row["mseed_paths"] = [paths]
    return row


@dataclass
class Ledger:
    """The ledger table. Create with :meth:`from_settings` (or directly from a TableClient)."""

    table: TableClient
    #: Create the table on first use (locally, on Azurite). In Azure the table is declared in
    #: the Bicep and the app's Table Data role, scoped to it, could not create it anyway.
    create_if_missing: bool = True
    _table_ready: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Ledger:
        """The ledger named by ``LEDGER_TABLE`` on the pipeline's storage account."""
        from shared_code.storage import table_service

        name = settings.ledger_table
        if not _TABLE_NAME.match(name):
            raise ValueError(
                f"setting LEDGER_TABLE={name!r}: a table name is 3-63 letters and digits, "
                "starting with a letter"
            )
        service = table_service(settings.storage)
        return cls(
            service.get_table_client(name), create_if_missing=not settings.storage.provisioned
        )

    def ensure_table(self) -> None:
        """Create the table if it does not exist (once per instance; only when local)."""
        if self._table_ready or not self.create_if_missing:
            return
        from azure.core.exceptions import ResourceExistsError

        with contextlib.suppress(ResourceExistsError):
            self.table.create_table()
        self._table_ready = True

    # -- writes --------------------------------------------------------------------------------

    def begin(
        self,
        field: str,
        blob: str,
        etag: str,
        *,
        event_id: str,
        event_time: str,
        url: str = "",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        redrive: bool = False,
        operation_id: str = "",
        now: datetime | None = None,
    ) -> bool:
        """Claim a blob version for decimate; False means "do nothing, it is a duplicate".

        Returns True for a new blob version, a ``failed`` one (a retry or a replay), or a
        ``received`` one whose lease (``lease_seconds``, seconds) has expired (its decimate
        crashed or timed out); ``attempts`` counts the claims. Returns False while another
        claim's lease runs (a concurrent duplicate) and for a version already ``decimated`` or
        ``converted`` (a duplicate delivery), unless ``redrive`` (an operator's replay or
        reconciliation) asks to process a finished version again.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import UpdateMode

        from shared_code.telemetry import scrub

        self.ensure_table()
        now = now or datetime.now(UTC)
        pk, rk = field, row_key(blob, etag)
        claim = {
            "state": RECEIVED,
            "stage": "decimate",
            "event_id": event_id,
            "event_time": event_time,
            "url": scrub(url),
            "operation_id": operation_id or event_id,
            "lease_until": now + timedelta(seconds=lease_seconds),
            "updated": now,
            "reason": "",
        }
        try:
            self.table.create_entity(
                {
                    "PartitionKey": pk,
                    "RowKey": rk,
                    "blob": blob,
                    "etag": canonical_etag(etag),
                    "attempts": 1,
                    "created": now,
                    "decimated_path": "",
                    "mseed_paths": "[]",
                    "failure_path": "",
                    **claim,
                }
            )
            return True
        except ResourceExistsError:
            pass
        for _ in range(_CLAIM_RETRIES):
            try:
                existing = self.table.get_entity(pk, rk)
            except ResourceNotFoundError:  # deleted meanwhile: claim it afresh
                return self.begin(
                    field, blob, etag, event_id=event_id, event_time=event_time, url=url,
                    lease_seconds=lease_seconds, redrive=redrive,
                    operation_id=operation_id, now=now,
                )  # fmt: skip
            state = existing.get("state")
            lease_until = _aware(existing.get("lease_until"))
            if state == RECEIVED and lease_until is not None and lease_until > now:
                log.info("%s (ETag %s): already in progress, duplicate ignored", blob, etag)
                return False
            if state in (DECIMATED, CONVERTED, SUPERSEDED, SOURCE_DELETED) and not redrive:
                log.info("%s (ETag %s): already %s, duplicate ignored", blob, etag, state)
                return False
            update = {
                "PartitionKey": pk,
                "RowKey": rk,
                "attempts": int(existing.get("attempts") or 0) + 1,
                **claim,
            }
            try:
                self.table.update_entity(
                    update,
                    mode=UpdateMode.MERGE,
                    etag=existing.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return True
            except ResourceModifiedError:
                continue  # another claim won the race: look again
        return False

    def _merge(self, field: str, blob: str, etag: str, values: dict[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        self.ensure_table()
        # Upsert: a message queued before the ledger existed still gets its row.
        self.table.upsert_entity(
            {
                "PartitionKey": field,
                "RowKey": row_key(blob, etag),
                "blob": blob,
                "etag": canonical_etag(etag),
                "updated": datetime.now(UTC),
                **values,
            },
            mode=UpdateMode.MERGE,
        )

    def mark_decimated(self, field: str, blob: str, etag: str, decimated_path: str) -> None:
        """Decimate finished: the decimated file is at ``decimated_path`` (share-relative) and
        its ConvertRequest is queued."""
        self._merge(
            field, blob, etag,
            {"state": DECIMATED, "stage": "convert", "decimated_path": decimated_path,
             "reason": "", "decimated_at": datetime.now(UTC)},
        )  # fmt: skip

    def mark_converted(self, field: str, blob: str, etag: str, mseed_paths: Iterable[str]) -> None:
        """Convert finished: MiniSEED files (share-relative ``mseed_paths``) are visible."""
        self._merge(
            field, blob, etag,
            {"state": CONVERTED, "stage": "convert", "mseed_paths": json.dumps(list(mseed_paths)),
             "reason": "", "converted_at": datetime.now(UTC)},
        )  # fmt: skip

    def mark_superseded(self, field: str, blob: str, etag: str) -> None:
        """The blob changed before decimate could read this version: nothing to do for it."""
        self._merge(
            field, blob, etag,
            {"state": SUPERSEDED, "stage": "decimate",
             "reason": "a newer version of the blob exists"},
        )  # fmt: skip

    def mark_source_deleted(self, field: str, blob: str, etag: str, reason: str) -> None:
        """The blob was deleted before decimate read this version: ``reason`` says so."""
        from shared_code.telemetry import scrub

        self._merge(
            field, blob, etag,
            {"state": SOURCE_DELETED, "stage": "decimate",
             "reason": scrub(reason)[:MAX_REASON_CHARS], "failed_at": datetime.now(UTC)},
        )  # fmt: skip

    def mark_failed(
        self,
        field: str,
        blob: str,
        etag: str,
        *,
        stage: str,
        reason: str,
        failure_path: str = "",
        event: dict[str, Any] | None = None,
        message: str | None = None,
        permanent: bool = True,
    ) -> None:
        """A stage failed: ``reason`` (scrubbed, truncated), the share-relative path of the
        failure record an operator can replay (empty if the share could not take it), and the
        failed ``event`` or queue ``message`` itself when it fits a Table property, so the row
        alone is enough to replay (see :data:`MAX_INPUT_CHARS`)."""
        from shared_code.telemetry import scrub

        values: dict[str, Any] = {
            "state": FAILED, "stage": stage, "reason": scrub(reason)[:MAX_REASON_CHARS],
            "failure_path": failure_path, "failed_at": datetime.now(UTC),
            "permanent": permanent,
        }  # fmt: skip
        inputs = {
            "event": json.dumps(event, default=str) if event else "",
            "message": message or "",
        }
        for name, text in inputs.items():
            fits = len(text) <= MAX_INPUT_CHARS
            if not fits:
                log.warning("%s: failed %s too large for its ledger row (%d chars)",
                            blob, name, len(text))  # fmt: skip
            values[name] = text if fits else ""
        self._merge(field, blob, etag, values)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, field: str, blob: str, etag: str) -> dict[str, Any] | None:
        """The row of one blob version, or None."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _row(dict(self.table.get_entity(field, row_key(blob, etag))))
        except ResourceNotFoundError:
            return None

    def query(
        self,
        field: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        by: str = "updated",
    ) -> list[dict[str, Any]]:
        """Rows filtered by field, state and time (``since`` <= t < ``until``; naive datetimes
        are UTC), oldest first. ``by``: ``updated`` (last change, default) or ``created``
        (first claim: about when the raw file arrived)."""
        from azure.core.exceptions import ResourceNotFoundError

        if by not in ("updated", "created"):
            raise ValueError(f"by {by!r}: expected 'updated' or 'created'")
        if state is not None and state not in STATES:
            raise ValueError(f"state {state!r}: expected one of {', '.join(STATES)}")
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if field:
            clauses.append("PartitionKey eq @field")
            params["field"] = field
        if state:
            clauses.append("state eq @state")
            params["state"] = state
        if since is not None:
            clauses.append(f"{by} ge @since")
            params["since"] = since if since.tzinfo else since.replace(tzinfo=UTC)
        if until is not None:
            clauses.append(f"{by} lt @until")
            params["until"] = until if until.tzinfo else until.replace(tzinfo=UTC)
        try:
            if clauses:
                entities = self.table.query_entities(" and ".join(clauses), parameters=params)
            else:
                entities = self.table.list_entities()
            rows = [_row(dict(e)) for e in entities]
        except ResourceNotFoundError:  # no table yet: nothing recorded
            return []
        return sorted(rows, key=lambda r: str(r.get(by, "")))

    def summary(self) -> dict[str, dict[str, int]]:
        """Row counts per field and state: ``{field: {state: count}}``."""
        from azure.core.exceptions import ResourceNotFoundError

        counts: dict[str, dict[str, int]] = {}
        try:
            for entity in self.table.list_entities(select=["PartitionKey", "state"]):
                per_field = counts.setdefault(str(entity["PartitionKey"]), {})
                state = str(entity.get("state") or "unknown")
                per_field[state] = per_field.get(state, 0) + 1
        except ResourceNotFoundError:
            return {}
        return counts
