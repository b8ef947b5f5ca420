"""SEG-Y trace headers (shared by SEG-Y and SU): layout by segyio name, start time in and out.

Start time of a trace's first sample, as read and written here::

    time zero  = YearDataRecorded / DayOfYear / HourOfDay / MinuteOfHour / SecondOfMinute
                 (bytes 157-166; years below 100 mean 19xx/20xx as in ObsPy; year 0 = no date,
                 taken as 1970-01-01)
    first sample = time zero + DelayRecordingTime (bytes 109-110, ms)
                   scaled by ScalarTraceHeader (bytes 215-216: 0 = 1, > 0 multiplies,
                   < 0 divides; rev 1 applies it to all times in bytes 95-114)
    time zero += NanosecondsOfSecond (SEG-Y rev 2 Trace Header Extension 1, bytes 141-144,
                 "nanoseconds to add to Second of minute"; only in files with that extension,
                 see :func:`extension1_dtype`)

The time basis code (bytes 167-168) is carried in the headers but not applied: local (1) and
GPS (5) times are taken as UTC. Vendor conventions in unassigned bytes
(e.g. PASSCAL's milliseconds at bytes 169-170, over the trace weighting factor) are not
standard and are only carried. With a divisor scalar the delay reaches 0.1 ms (scalar -10,
±3.2 s) or 1 µs (scalar -1000, ±32 ms), so a writer can put a µs-exact start time on the
standard header alone; :func:`encode_start` finds such an encoding or reports that none exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from functools import cache
from typing import Any

import numpy as np

from shared_code.formats.errors import FormatError
from shared_code.waveforms import NS_PER_S

HEADER_BYTES = 240
NS_PER_MS = 1_000_000
_INT16 = (-32768, 32767)
_UNSIGNED = frozenset({"TRACE_SAMPLE_COUNT"})
_DATE_FIELDS = ("YearDataRecorded", "DayOfYear", "HourOfDay", "MinuteOfHour", "SecondOfMinute")
#: Other times in bytes 95-114 that ScalarTraceHeader also scales (so it may only change
#: when they are all zero).
_SCALED_TIMES = (
    "SourceUpholeTime",
    "GroupUpholeTime",
    "SourceStaticCorrection",
    "GroupStaticCorrection",
    "TotalStaticApplied",
    "LagTimeA",
    "LagTimeB",
    "MuteTimeStart",
    "MuteTimeEND",
)
_SCALARS = (0, -10, -100, -1000, 10)


@cache
def header_dtype(endian: str) -> np.dtype:
    """The 240-byte trace header as a numpy structured dtype, fields named as in segyio.

    ``endian`` is ``"big"`` or ``"little"``. The sample count (bytes 115-116) is unsigned (rev
    2.0); the sample interval (117-118) two's complement like every other word, so an
    invalid -2 reads as -2, not 65534 µs (see :mod:`segy_headers`).
    """
    import segyio

    fields = sorted((int(f), str(f)) for f in segyio.TraceField.enums())
    order = ">" if endian == "big" else "<"
    names, offsets, formats = [], [], []
    for (byte, name), nxt in zip(
        fields, [*(b for b, _ in fields[1:]), HEADER_BYTES + 1], strict=True
    ):
        size = nxt - byte
        kind = "u" if name in _UNSIGNED else "i"
        names.append(name)
        offsets.append(byte - 1)
        formats.append(f"{order}{kind}{size}")
    return np.dtype(
        {"names": names, "offsets": offsets, "formats": formats, "itemsize": HEADER_BYTES}
    )


#: SEG-Y rev 2.0 (SEG Technical Standards Committee, March 2017), "SEG-Y Trace Header
#: Extension 1": the words read here, as (name, 0-based offset, numpy type without byte order).
#: Coordinates and other IEEE-double words are left out (the trace dicts hold integers).
_EXTENSION1 = (
    ("ExtTraceSequenceLine", 0, "u8"),  # bytes 1-8, extended trace sequence number in line
    ("ExtTraceSequenceFile", 8, "u8"),  # bytes 9-16, extended trace sequence number in file
    ("ExtFieldRecord", 16, "i8"),  # bytes 17-24, extended original field record number
    ("ExtEnsembleNumber", 24, "i8"),  # bytes 25-32, extended ensemble number
    ("ExtSampleCount", 136, "u4"),  # bytes 137-140, extended number of samples in this trace
    ("NanosecondsOfSecond", 140, "i4"),  # bytes 141-144, ns to add to SecondOfMinute
    ("ExtSampleInterval", 144, "f8"),  # bytes 145-152, IEEE double, µs for time data
    ("CableNumber", 152, "i4"),  # bytes 153-156, cable number or recording device/sensor id
    ("ExtensionCount", 156, "u2"),  # bytes 157-158, additional 240-byte headers of this trace
    ("HeaderName", 232, "S8"),  # bytes 233-240, "SEG00001" (ASCII or EBCDIC) or zeros
)
#: The integer words of extension 1 that are carried in the trace header dicts.
EXTENSION1_CARRIED = tuple(n for n, _, t in _EXTENSION1 if t[0] in "iu" and n != "ExtensionCount")
#: Accepted names of extension 1 (bytes 233-240): zeros, or "SEG00001" in ASCII or EBCDIC.
EXTENSION1_NAMES = (bytes(8), b"SEG00001", "SEG00001".encode("cp037"))


@cache
def extension1_dtype(endian: str) -> np.dtype:
    """SEG-Y rev 2 Trace Header Extension 1 (the 240 bytes after the standard trace header).

    Fields (1-based bytes, SEG-Y rev 2.0 section "SEG-Y Trace Header Extension 1"): see
    :data:`_EXTENSION1`. ``ExtSampleInterval`` is in µs for time data (as binary header bytes
    3217-3218); ``NanosecondsOfSecond`` is added to time zero (bytes 157-166 of the standard
    header), before the delay recording time.
    """
    order = ">" if endian == "big" else "<"
    return np.dtype(
        {
            "names": [n for n, _, _ in _EXTENSION1],
            "offsets": [o for _, o, _ in _EXTENSION1],
            "formats": [t if t[0] == "S" else order + t for _, _, t in _EXTENSION1],
            "itemsize": HEADER_BYTES,
        }
    )


class HeaderTable:
    """The integer header words of many traces as one matrix (traces × words, int64).

    Thousands of traces per file make one dict per trace the slow part of reading and writing
    their headers: the table is built with a few numpy operations, each trace gets a
    :class:`HeaderRow` view of its row, and writers take the words back as a matrix.
    """

    def __init__(self, names: tuple[str, ...], words: np.ndarray) -> None:
        if words.ndim != 2 or words.shape[1] != len(names):
            raise ValueError(f"words must be traces × {len(names)}, got {words.shape}")
        self.names = names
        self.words = np.ascontiguousarray(words, dtype=np.int64)
        self.column = {n: j for j, n in enumerate(names)}
        self._rows: dict[int, tuple[int, ...]] = {}
        self._timing: list[tuple[int, ...]] | None = None

    @classmethod
    def from_headers(
        cls, headers: np.ndarray, extra: dict[str, np.ndarray] | None = None
    ) -> HeaderTable:
        """From a structured header array (:func:`header_dtype`), plus extra integer columns."""
        columns = {n: headers[n] for n in headers.dtype.names or ()}
        columns.update(extra or {})
        words = np.empty((len(headers), len(columns)), np.int64)
        for j, values in enumerate(columns.values()):
            words[:, j] = values
        return cls(tuple(columns), words)

    def rows(self) -> list[HeaderRow]:
        return [HeaderRow(self, i) for i in range(len(self.words))]

    def row_tuple(self, i: int) -> tuple[int, ...]:
        """Row ``i`` as Python ints (converted on first use, then kept)."""
        row = self._rows.get(i)
        if row is None:
            row = self._rows[i] = tuple(self.words[i].tolist())
        return row

    def set_word(self, i: int, j: int, value: int) -> None:
        self.words[i, j] = value
        self._timing = None
        self._rows.pop(i, None)

    def timing_key(self, i: int) -> tuple[int, ...]:
        """:func:`timing_key` of row ``i`` (all rows computed once, on first use)."""
        if self._timing is None:
            cols = [self.column.get(n) for n in _TIMING_FIELDS]
            keys = np.zeros((len(self.words), len(cols)), np.int64)
            for k, j in enumerate(cols):
                if j is not None:
                    keys[:, k] = self.words[:, j]
            self._timing = [tuple(r) for r in keys.tolist()]
        return self._timing[i]

    def select(self, rows: np.ndarray, names: list[str]) -> np.ndarray | None:
        """Words of these rows (traces × names, int64); None if a name is not a column."""
        try:
            cols = [self.column[n] for n in names]
        except KeyError:
            return None
        return self.words[np.ix_(rows, np.asarray(cols, np.int64))]


class HeaderRow(MutableMapping[str, Any]):
    """One trace's header words, by segyio name: a row of a :class:`HeaderTable`.

    Reads come from the table; setting a word the table has writes the table's row (so the
    writers' matrix path sees it), any other key (or a value that is not an int64) goes to
    this row's own dict and sends writers down their per-trace path.
    """

    __slots__ = ("_extra", "index", "table")

    def __init__(self, table: HeaderTable, index: int) -> None:
        self.table = table
        self.index = index
        self._extra: dict[str, Any] | None = None

    @property
    def plain(self) -> bool:
        """True if every value is the table's (nothing set outside it)."""
        return not self._extra

    def __getitem__(self, key: str) -> Any:
        if self._extra and key in self._extra:
            return self._extra[key]
        j = self.table.column.get(key)
        if j is None:
            raise KeyError(key)
        return self.table.row_tuple(self.index)[j]

    def __setitem__(self, key: str, value: Any) -> None:
        j = self.table.column.get(key)
        if j is not None and type(value) is int and -(1 << 63) <= value < (1 << 63):
            self.table.set_word(self.index, j, value)
            if self._extra:
                self._extra.pop(key, None)
            return
        if self._extra is None:
            self._extra = {}
        self._extra[key] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("SEG-Y trace header words cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        yield from self.table.names
        if self._extra:
            yield from (k for k in self._extra if k not in self.table.column)

    def __len__(self) -> int:
        extra = sum(k not in self.table.column for k in self._extra or ())
        return len(self.table.names) + extra

    def __repr__(self) -> str:
        return f"HeaderRow({dict(self)!r})"


def start_times_ns(
    headers: np.ndarray, name: str, subsecond_ns: np.ndarray | None = None
) -> np.ndarray:
    """First-sample time of every trace (int64 ns since 1970 UTC) from its header.

    ``subsecond_ns`` is each trace's "nanoseconds to add to second of minute" (SEG-Y rev 2
    trace header extension 1, bytes 141-144), if the file has that extension; it must be in
    0 .. 999 999 999 ns.
    """
    year = headers["YearDataRecorded"].astype(np.int64)
    year = np.where(year < 30, year + 2000, np.where(year < 100, year + 1900, year))
    doy = headers["DayOfYear"].astype(np.int64)
    hour = headers["HourOfDay"].astype(np.int64)
    minute = headers["MinuteOfHour"].astype(np.int64)
    second = headers["SecondOfMinute"].astype(np.int64)
    dated = headers["YearDataRecorded"] != 0
    bad = dated & (
        (doy < 1)
        | (doy > 366)
        | (hour < 0)
        | (hour > 23)
        | (minute < 0)
        | (minute > 59)
        | (second < 0)
        | (second > 60)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FormatError(
            name,
            f"trace {i}: invalid recording time year {year[i]} day {doy[i]} "
            f"{hour[i]:02d}:{minute[i]:02d}:{second[i]:02d} in trace header bytes 157-166",
        )
    jan1 = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    seconds = (jan1 + doy - 1) * 86400 + hour * 3600 + minute * 60 + second
    seconds = np.where(dated, seconds, 0)
    zero = seconds * NS_PER_S
    if subsecond_ns is not None:
        sub = np.asarray(subsecond_ns, dtype=np.int64)
        wrong = (sub < 0) | (sub >= NS_PER_S)
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise FormatError(
                name,
                f"trace {i}: {sub[i]} nanoseconds to add to the second (trace header "
                "extension 1 bytes 141-144) is not in 0..999999999",
            )
        zero = zero + sub
    return zero + _delay_ns(
        headers["DelayRecordingTime"].astype(np.int64),
        headers["ScalarTraceHeader"].astype(np.int64),
    )


def _delay_ns(delay: np.ndarray, scalar: np.ndarray) -> np.ndarray:
    """Delay recording time in ns from the ms value and its scalar (0 = 1, < 0 divides)."""
    mult = np.where(scalar > 0, scalar, 1)
    div = np.where(scalar < 0, -scalar, 1)
    return (delay * NS_PER_MS * mult + div // 2) // div


def _time_zero_ns(fields: Mapping[str, Any]) -> int | None:
    """Whole-second time zero of a header dict; None if it has no valid date."""
    if not fields.get("YearDataRecorded"):
        return None
    one = np.zeros(1, dtype=header_dtype("big"))
    for key in _DATE_FIELDS:
        one[key] = fields.get(key, 0)
    try:
        return int(start_times_ns(one, "")[0])
    except FormatError:
        return None


def _date_fields(seconds: int) -> dict[str, int]:
    day = np.datetime64(seconds, "s").astype("datetime64[D]")
    year = int(day.astype("datetime64[Y]").astype(np.int64)) + 1970
    jan1 = np.datetime64(f"{year:04d}-01-01")
    rest = seconds % 86400
    return {
        "YearDataRecorded": year,
        "DayOfYear": int((day - jan1).astype(np.int64)) + 1,
        "HourOfDay": rest // 3600,
        "MinuteOfHour": rest // 60 % 60,
        "SecondOfMinute": rest % 60,
    }


_TIMING_FIELDS = (*_DATE_FIELDS, "ScalarTraceHeader", *_SCALED_TIMES)
_TIMING_ZEROS = (0,) * len(_TIMING_FIELDS)


def timing_key(fields: Mapping[str, Any]) -> tuple[int, ...]:
    """The header words :func:`encode_start` reads from its template (a cache key).

    Called once per trace of every file written: rows of a :class:`HeaderTable` answer from
    the table's cache, and ``map`` over ``dict.get`` keeps the rest in C.
    """
    if type(fields) is HeaderRow and fields.plain:
        return fields.table.timing_key(fields.index)
    return tuple(map(int, map(fields.get, _TIMING_FIELDS, _TIMING_ZEROS)))


def encode_start(start_ns: int, template: Mapping[str, Any]) -> dict[str, int] | None:
    """Header fields that put a trace's first sample at ``start_ns`` (ns since 1970 UTC).

    Keeps the template's time zero (date fields) where the delay from it fits, else uses the
    second before or after the start; the delay's scalar changes only when no other time in
    bytes 95-114 depends on it. Returns the date, ``DelayRecordingTime`` and
    ``ScalarTraceHeader`` fields, or None if the time cannot be carried exactly (sub-µs, or
    out of the int16 delay's reach), in which case the writer must choose another format.
    """
    if start_ns % 1000:
        return None
    current = int(template.get("ScalarTraceHeader", 0))
    free = not any(template.get(f, 0) for f in _SCALED_TIMES)
    scalars = [current, *(s for s in _SCALARS if s != current)] if free else [current]
    floor = start_ns // NS_PER_S
    zeros: list[int] = []
    kept = _time_zero_ns(template)
    if kept is not None and kept % NS_PER_S == 0:
        zeros.append(kept // NS_PER_S)
    zeros += [floor, floor + 1]
    for zero in zeros:
        if not 0 <= zero < 253402300800:  # year 1970 .. 9999
            continue
        offset = start_ns - zero * NS_PER_S
        for scalar in scalars:
            unit = NS_PER_MS * scalar if scalar > 0 else NS_PER_MS // max(1, -scalar)
            delay, rest = divmod(offset, unit)
            if rest == 0 and _INT16[0] <= delay <= _INT16[1]:
                return {
                    **_date_fields(zero),
                    "DelayRecordingTime": delay,
                    "ScalarTraceHeader": scalar,
                }
    return None
