"""SEG-2 (rev 1) through ObsPy, with the start time parsed here.

ObsPy's SEG-2 reader drops the time of day when ACQUISITION_TIME has a decimal fraction
("12:34:56.5" splits into four numbers and falls back to midnight) and ignores the per-trace
DELAY. Here: start = ACQUISITION_DATE (DD/MON/YYYY, or DD/MM/YYYY) + ACQUISITION_TIME
(HH:MM:SS[.ffffff]) + DELAY (s); rate = 1 / SAMPLE_INTERVAL (s), both parsed as exact
decimals. A file without date and time starts at 1970-01-01. The free-form strings of the
file and trace descriptors are carried as ``TraceMeta.headers``. SEG-2 is read-only here
(ObsPy cannot write it); decimated SEG-2 goes to miniSEED.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

from shared_code.formats import obspy_bridge
from shared_code.formats.errors import FormatError
from shared_code.waveforms import NS_PER_S, Recording

NAME = "SEG2"
EXTENSION = "sg2"
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(r"^\s*(\d{1,2})[/.\- ]([A-Za-z]{3}|\d{1,2})[/.\- ](\d{4})\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2}):(\d{2}(?:\.\d*)?)\s*$")


def is_seg2(path: Path) -> bool:
    """True if the file starts with a SEG-2 file descriptor block (0x3A55, either order)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8:
        return False
    order = {b"\x55\x3a": "little", b"\x3a\x55": "big"}.get(head[:2])
    if order is None:
        return False
    revision = int.from_bytes(head[2:4], order)  # type: ignore[arg-type]
    n_traces = int.from_bytes(head[6:8], order)  # type: ignore[arg-type]
    return 1 <= revision <= 3 and n_traces > 0


def acquisition_ns(date: str, time: str, name: str) -> int:
    """ACQUISITION_DATE + ACQUISITION_TIME as ns since 1970 UTC."""
    d, t = _DATE.match(date), _TIME.match(time)
    if not d or not t:
        raise FormatError(name, f"SEG-2 acquisition date/time {date!r} {time!r} not understood")
    month_text = d.group(2).upper()
    month = _MONTHS.index(month_text) + 1 if month_text in _MONTHS else int(month_text)
    try:
        day = datetime(int(d.group(3)), month, int(d.group(1)), tzinfo=UTC)
    except ValueError as exc:
        raise FormatError(name, f"SEG-2 acquisition date {date!r}: {exc}") from exc
    seconds = int(t.group(1)) * 3600 + int(t.group(2)) * 60 + Decimal(t.group(3))
    return int(day.timestamp()) * NS_PER_S + int(seconds * NS_PER_S)


def _decimal(value: str, key: str, name: str) -> Decimal:
    try:
        return Decimal(value.strip() or "0")
    except InvalidOperation as exc:
        raise FormatError(name, f"SEG-2 {key} {value!r} is not a number") from exc


def read(path: Path, name: str) -> Recording:
    """Read a SEG-2 file; integer samples stay integer."""
    from obspy import UTCDateTime

    stream = obspy_bridge.read_stream(path, name, NAME)
    for tr in stream:
        strings = tr.stats.seg2
        zero = 0
        if "ACQUISITION_DATE" in strings and "ACQUISITION_TIME" in strings:
            zero = acquisition_ns(strings.ACQUISITION_DATE, strings.ACQUISITION_TIME, name)
        delay = _decimal(strings.get("DELAY", "0"), "DELAY", name)
        interval = _decimal(strings.get("SAMPLE_INTERVAL", ""), "SAMPLE_INTERVAL", name)
        if interval <= 0:
            raise FormatError(name, f"SEG-2 SAMPLE_INTERVAL {interval} s is not positive")
        tr.stats.sampling_rate = float(1 / Fraction(interval))
        tr.stats.starttime = UTCDateTime(ns=zero + int(delay * NS_PER_S))
    return obspy_bridge.stream_to_recording(stream, NAME, name, "seg2")
