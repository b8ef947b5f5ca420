"""MiniSEED 2 through ObsPy (libmseed): read any record length; write 512-byte records.

Written samples: integers as int32 with Steim-2 compression, or plain INT32 for a trace whose
sample-to-sample differences exceed Steim-2's 30 bits; floats as FLOAT32. Traces without SEED
codes (from SEG-Y, SU, SEG-2) are written with their 0-based trace index as the station code
and the other codes empty, and read back as code-less traces with that index, so the index
survives channel selection. MiniSEED 3 is recognised and refused (ObsPy 1.5 cannot read it).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shared_code.formats import obspy_bridge
from shared_code.formats.errors import FormatError
from shared_code.formats.streaming import (
    Layout,
    Writer,
    check_int32,
    fits_int32,
    layout_of,
    write_whole,
)
from shared_code.waveforms import Block, Recording, TraceMeta

NAME = "MSEED"
EXTENSION = "mseed"
RECORD_LENGTH = 512
#: Steim-2 stores differences in at most 30 bits (two's complement).
STEIM2_MAX_DIFF = 2**29
_QUALITY = b"DRQM"
_MAX_INDEX = 99_999


def is_mseed(path: Path) -> bool:
    """True for a miniSEED 2 fixed header (or a miniSEED 3 record) at the start of the file."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if head[:3] == b"MS\x03":
        return True
    if len(head) < 48 or head[6] not in _QUALITY or head[7] not in b" \x00":
        return False
    if not all(c in b"0123456789 \x00" for c in head[:6]):
        return False
    for order in (">", "<"):
        year = int.from_bytes(head[20:22], "big" if order == ">" else "little")
        day = int.from_bytes(head[22:24], "big" if order == ">" else "little")
        if 1900 <= year <= 2100 and 1 <= day <= 366 and head[24] < 24 and head[25] < 60:
            return True
    return False


def read(path: Path, name: str) -> Recording:
    """Read a miniSEED 2 file; traces grouped into blocks by start, rate and length."""
    with open(path, "rb") as fh:
        if fh.read(3) == b"MS\x03":
            raise FormatError(name, "miniSEED 3 is not supported (ObsPy reads miniSEED 2 only)")
    stream = obspy_bridge.read_stream(path, name, NAME)
    recording = obspy_bridge.stream_to_recording(stream, NAME, name, None)
    for block in recording.blocks:
        block.traces = [_restore_index(meta) for meta in block.traces]
    return recording


def _restore_index(meta: TraceMeta) -> TraceMeta:
    if meta.station.isdigit() and not (meta.network or meta.location or meta.channel):
        return TraceMeta(index=int(meta.station), headers=meta.headers)
    return meta


def _cast(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float32) if data.dtype.kind == "f" else data.astype(np.int32)


def layout_problem(layout: Layout) -> str | None:
    """Why traces of this layout cannot be written as miniSEED, or None.

    Integer samples must also fit int32: the writer checks that per row (values are not
    part of a layout).
    """
    for block in layout.blocks:
        if block.dtype.kind not in "iuf":
            return f"sample type {block.dtype} is not numeric"
        for meta in block.traces:
            codeless = not (meta.network or meta.station or meta.location or meta.channel)
            if codeless and meta.index > _MAX_INDEX:
                return f"trace index {meta.index} does not fit a 5-character station code"
            if len(meta.network) > 2 or len(meta.station) > 5 or len(meta.location) > 2:
                return f"trace {meta.index}: SEED codes too long for miniSEED"
            if len(meta.channel) > 3:
                return f"trace {meta.index}: channel code {meta.channel!r} too long"
    return None


def can_write(recording: Recording) -> bool:
    """True if every trace fits miniSEED 2 (int32-range or float samples, SEED code lengths)."""
    layout = layout_of(recording)
    return layout_problem(layout) is None and all(fits_int32(b.data) for b in recording.blocks)


def can_write_layout(layout: Layout) -> bool:
    """True if traces of this layout fit miniSEED 2 (numeric samples, SEED code lengths)."""
    return layout_problem(layout) is None


def encoding_for(data: np.ndarray) -> str:
    """miniSEED encoding of one trace's samples: STEIM2, INT32 (Steim-2 overflow) or FLOAT32."""
    if data.dtype.kind == "f":
        return "FLOAT32"
    diffs = np.diff(data.astype(np.int64))
    if diffs.size and (diffs.min() < -STEIM2_MAX_DIFF or diffs.max() >= STEIM2_MAX_DIFF):
        return "INT32"
    return "STEIM2"


class MseedWriter(Writer):
    """Appends each row's 512-byte records as rows arrive (one row = one trace)."""

    def __init__(self, layout: Layout, out: BinaryIO) -> None:
        problem = layout_problem(layout)
        if problem:
            raise FormatError(layout.source, f"cannot write miniSEED: {problem}")
        super().__init__(layout, out)

    def _write(self, block_index: int, start: int, data: np.ndarray) -> None:
        from obspy.core import AttribDict

        check_int32(data, self.layout, "miniSEED")
        block = self.layout.blocks[block_index]
        metas = block.traces[start : start + len(data)]
        rows = Recording(
            NAME, [Block(data, block.sampling_rate, block.starttime_ns, metas)], self.layout.source
        )
        stream = obspy_bridge.recording_to_stream(rows, cast=_cast)
        for tr, meta in zip(stream, metas, strict=True):
            if not (meta.network or meta.station or meta.location or meta.channel):
                tr.stats.station = str(meta.index)
            tr.stats.mseed = AttribDict(encoding=encoding_for(tr.data))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "more than one encoding" when Steim-2 overflows
            stream.write(self._out, format=NAME, reclen=RECORD_LENGTH)

    def _finish(self) -> None:
        """Nothing follows the last trace's records."""


def writer(layout: Layout, out: BinaryIO) -> MseedWriter:
    """A streaming miniSEED 2 writer (512-byte records) for this layout, into an open file."""
    return MseedWriter(layout, out)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as miniSEED 2 with 512-byte records to an open binary file."""
    if not all(fits_int32(b.data) for b in recording.blocks):
        raise FormatError(
            recording.source, "cannot write miniSEED: integer samples exceed the int32 range"
        )
    write_whole(recording, writer(layout_of(recording), out))
