"""The ConvertRequest queue message: its schema, validated on both ends.

The message is JSON with a ``version`` field. Unknown versions and malformed messages raise
:class:`MessageError`, which the convert trigger lets escape so that the host retries and,
after ``maxDequeueCount`` (host.json), moves the message to the poison queue.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any

from shared_code.etags import canonical_etag

VERSION = 1


class MessageError(ValueError):
    """A queue message that is not a valid ConvertRequest; the message says why."""


@dataclass(frozen=True)
class SourceBlob:
    """Where the decimated file came from, so an operator can trace it back.

    ``etag`` is kept canonical (:func:`shared_code.etags.canonical_etag`) whoever builds it
    (an event, a queue message queued before, the CLI), since ``name@etag`` owns seam claims.
    """

    url: str
    container: str
    name: str
    etag: str
    event_id: str
    event_time: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", canonical_etag(self.etag))


@dataclass(frozen=True)
class ConvertRequest:
    """What convert needs to turn one decimated file into MiniSEED.

    ``decimated_path`` is relative to the share root; ``file_type`` is the decimated file's
    format name (``SEGY``, ``MSEED``, ``SAC``, ...); ``sampling_rate_hz`` is its rate (Hz);
    ``integer_counts`` says whether samples are integer counts (written Steim-2) or floats
    (written FLOAT32). ``trace_indices`` gives, in file order, each decimated trace's channel
    number in the raw file (``TraceMeta.index``: its position, or for formats read through ObsPy
    its channel's order of first appearance, shared by the segments of a channel with gaps) as
    compact ranges (``"0-3,8-11"``, repeats allowed; empty: the identity), so SEED ids derived
    from channel numbers survive a channel selection. ``data_start_ns`` is the raw file's
    first sample (ns since 1970, UTC), which names the MiniSEED file's day folder
    (``share_layout.BlobPaths.mseed``); absent in messages queued before it existed, where
    convert takes the decimated file's first sample instead.
    """

    field: str
    decimated_path: str
    file_type: str
    sampling_rate_hz: float
    integer_counts: bool
    source: SourceBlob
    operation_id: str = ""
    trace_indices: str = ""
    data_start_ns: int | None = None
    extra: dict[str, Any] = dataclass_field(default_factory=dict)
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ConvertRequest:
        """Parse and validate; raises MessageError naming what is wrong."""
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MessageError(f"convert message is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise MessageError("convert message is not a JSON object")
        version = raw.get("version")
        if version != VERSION:
            raise MessageError(
                f"convert message version {version!r} is not supported (want {VERSION})"
            )
        src = raw.get("source")
        if not isinstance(src, dict):
            raise MessageError("convert message has no 'source' object")
        try:
            source = SourceBlob(
                **{k: _str(src, k, "source.") for k in SourceBlob.__dataclass_fields__}
            )
            request = cls(
                field=_str(raw, "field"),
                decimated_path=_str(raw, "decimated_path"),
                file_type=_str(raw, "file_type"),
                sampling_rate_hz=_number(raw, "sampling_rate_hz"),
                integer_counts=_bool(raw, "integer_counts"),
                source=source,
                operation_id=str(raw.get("operation_id", "")),
                trace_indices=str(raw.get("trace_indices", "")),
                data_start_ns=_optional_int(raw, "data_start_ns"),
                extra=dict(raw.get("extra") or {}),
            )
        except TypeError as exc:
            raise MessageError(f"convert message malformed: {exc}") from None
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise MessageError(f"convert message has unknown keys: {sorted(unknown)}")
        if not request.decimated_path.startswith("decimated/") or ".." in request.decimated_path:
            raise MessageError(
                f"convert message decimated_path {request.decimated_path!r} is not under decimated/"
            )
        try:
            parse_ranges(request.trace_indices)
        except ValueError:
            raise MessageError(
                f"convert message trace_indices {request.trace_indices[:40]!r} is not 'a-b,c,...'"
            ) from None
        if not request.sampling_rate_hz > 0:
            raise MessageError(f"convert message sampling_rate_hz {request.sampling_rate_hz} <= 0")
        return request


def _str(obj: dict[str, Any], key: str, prefix: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or (not value and key not in ("etag", "event_time", "url")):
        raise MessageError(f"convert message field {prefix}{key!r} must be a non-empty string")
    return value


def _number(obj: dict[str, Any], key: str) -> float:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(f"convert message field {key!r} must be a number")
    return float(value)


def _optional_int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise MessageError(f"convert message field {key!r} must be an integer")
    return value


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key)
    if not isinstance(value, bool):
        raise MessageError(f"convert message field {key!r} must be true or false")
    return value


def format_ranges(indices: list[int]) -> str:
    """Compact ``"0-3,8,10-11"`` form of a list of non-negative integers, order kept."""
    parts: list[str] = []
    i = 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        parts.append(str(indices[i]) if i == j else f"{indices[i]}-{indices[j]}")
        i = j + 1
    return ",".join(parts)


def parse_ranges(text: str) -> list[int]:
    """Inverse of :func:`format_ranges`; raises ValueError on anything else."""
    out: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        lo, hi = int(first), int(last or first)
        if lo < 0 or hi < lo:
            raise ValueError(part)
        out.extend(range(lo, hi + 1))
    return out
