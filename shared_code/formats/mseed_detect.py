"""Finding miniSEED 2 data in a file: the content check behind ``mseed.is_mseed``.

A file ObsPy and libmseed read as miniSEED need not start with a data record: a full SEED
volume starts with control headers (its dataless part), and noise records (a sequence number
and blanks) may come before the first record. Both are stepped over, as ObsPy's
``_is_mseed`` (obspy/io/mseed/core.py) does, to the first data record.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

_QUALITY = b"DRQM"
#: SEED control header types (volume, abbreviation dictionary, station, time span).
_CONTROL = (b"V", b"A", b"S", b"T")
#: Noise is skipped in steps of the smallest record length (bytes), as ObsPy and libmseed do.
_NOISE_CHUNK = 128
#: Noise chunks and control headers stepped over before the first data record, at most.
_MAX_SKIPPED = 100_000


def is_mseed(path: Path) -> bool:
    """True for a file whose first data record is miniSEED 2 (or that starts as miniSEED 3).

    As ObsPy's ``_is_mseed`` (obspy/io/mseed/core.py) and libmseed's reader, what precedes the
    first data record is skipped: noise records (a sequence number and blanks, 128 bytes at a
    time) and a full SEED volume's control headers (``V``, ``A``, ``S``, ``T`` records of the
    record length its volume blockette 005, 008 or 010 gives). Unlike ObsPy, the data record
    found must also have a plausible fixed header (time fields), so a text file that starts
    with digits and a ``D`` is not taken for miniSEED.
    """
    with open(path, "rb") as fh:
        if fh.read(3) == b"MS\x03":
            return True
        return first_data_record(fh, os.fstat(fh.fileno()).st_size) is not None


def first_data_record(fh: BinaryIO, size: int) -> int | None:
    """Byte offset of the first miniSEED 2 data record of an open file, or None.

    Noise records and SEED control headers before it are skipped (see :func:`is_mseed`); at
    most :data:`_MAX_SKIPPED` of them, so a large non-miniSEED file is rejected quickly.
    """
    pos = 0
    record_length = 0  # a SEED volume's, once its volume header is seen
    for _ in range(_MAX_SKIPPED):
        if pos + 48 > size:
            return None
        fh.seek(pos)
        head = fh.read(_NOISE_CHUNK)
        if _is_data_header(head):
            return pos
        control = head[6:7] in _CONTROL and _is_sequence(head[:6])
        if record_length and control:
            pos += record_length  # the volume's control headers come before its data
        elif _is_noise(head):
            pos += _NOISE_CHUNK
        elif control and head[6:7] == b"V":
            record_length = _volume_record_length(fh, pos) or 0
            if not record_length:
                return None
            pos += record_length
        else:
            return None
    return None


def _is_sequence(field: bytes) -> bool:
    """Six bytes of record sequence number: digits, blanks or NULs (ObsPy's test)."""
    return all(c in b"0123456789 \x00" for c in field)


def _is_noise(head: bytes) -> bool:
    """A noise record (libmseed's name): a sequence number or blanks, then blanks only."""
    return (
        len(head) == _NOISE_CHUNK and _is_sequence(head[:6]) and head[6:].strip(b" \t\r\n") == b""
    )


def _is_data_header(head: bytes) -> bool:
    """A miniSEED 2 fixed header: sequence number, quality D/R/Q/M, plausible start time."""
    if len(head) < 48 or head[6] not in _QUALITY or head[7] not in b" \x00":
        return False
    if not _is_sequence(head[:6]):
        return False
    for order in ("big", "little"):
        year = int.from_bytes(head[20:22], order)
        day = int.from_bytes(head[22:24], order)
        if 1900 <= year <= 2100 and 1 <= day <= 366 and head[24] < 24 and head[25] < 60:
            return True
    return False


def _volume_record_length(fh: BinaryIO, pos: int) -> int | None:
    """Record length (bytes) of the SEED volume whose first record starts at ``pos``.

    Blockettes 005, 008 and 010 (SEED 2.4 manual, chapter 5) start with type (3 ASCII
    digits), length (4) and version (4), then the record length as a power of two (2 digits).
    Other blockettes before them are stepped over by their length, a few at most (as ObsPy).
    """
    fh.seek(pos)
    record = fh.read(4096)
    at = 8
    for _ in range(3):
        # Numeric fields are right-justified: "  21" is 21 (as ObsPy's int() reads them).
        kind, length = record[at : at + 3], record[at + 3 : at + 7].strip()
        if kind in (b"005", b"008", b"010"):
            exponent = record[at + 11 : at + 13]
            if not exponent.isdigit() or not 8 <= int(exponent) <= 16:
                return None
            return 1 << int(exponent)
        if not length.isdigit() or int(length) < 7:
            return None
        at += int(length)
    return None
