"""Time arguments that operators type: ISO 8601 instants or ages such as ``6h``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``since``/``until`` parameter: ISO 8601 (naive = UTC) or a relative age such as
    ``90m``, ``6h``, ``2d``. Raises ValueError naming the accepted forms."""
    if not value:
        return None
    text = value.strip()
    units = {"m": 60.0, "h": 3600.0, "d": 86400.0}
    if text[-1:].lower() in units and text[:-1].replace(".", "", 1).isdigit():
        seconds = float(text[:-1]) * units[text[-1].lower()]
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r}: expected ISO 8601 (2024-05-01T00:00:00Z) or an age (90m, 6h, 2d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
