"""SAC binary (one trace per file) through ObsPy.

The check reads the header version (NVHDR = 6 or 7, word 76) and a positive sample spacing in
either byte order. Times: reference time (ms) + B (float32 seconds), rounded to the µs.
Samples are float32, so only float recordings are written as SAC (integers go to miniSEED and
stay integers), and only when a trial write and read-back reproduces samples, rate, µs start
time and SEED codes. The reference time and the picks relative to it are kept.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shared_code.formats import obspy_bridge
from shared_code.formats.errors import FormatError
from shared_code.formats.streaming import BufferingWriter, Layout, placeholder
from shared_code.waveforms import Recording

NAME = "SAC"
EXTENSION = "sac"
HEADER_BYTES = 632
#: SAC header words that describe the samples; rewritten from the data, never carried.
_EXTENT = frozenset({"npts", "delta", "b", "e", "depmin", "depmax", "depmen"})


def is_sac(path: Path) -> bool:
    """True if the first 632 bytes are a SAC binary header (either byte order)."""
    if os.path.getsize(path) < HEADER_BYTES:
        return False
    with open(path, "rb") as fh:
        head = fh.read(HEADER_BYTES)
    for order in "<>":
        delta = struct.unpack_from(f"{order}f", head, 0)[0]
        (nvhdr,) = struct.unpack_from(f"{order}i", head, 304)
        (npts,) = struct.unpack_from(f"{order}i", head, 316)
        if nvhdr in (6, 7) and npts >= 0 and np.isfinite(delta) and delta > 0:
            return True
    return False


def read(path: Path, name: str) -> Recording:
    """Read a SAC binary file (one trace)."""
    stream = obspy_bridge.read_stream(path, name, NAME)
    return obspy_bridge.stream_to_recording(stream, NAME, name, "sac")


def _cast(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float32)


def can_write(recording: Recording) -> bool:
    """True if SAC carries the recording without loss (one trace, checked by a trial write)."""
    if recording.n_traces != 1 or recording.blocks[0].data.dtype.kind != "f":
        return False
    return obspy_bridge.survives(recording, write, read, _cast)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write a one-trace recording as SAC binary (float32) to an open binary file."""
    if recording.n_traces != 1:
        raise FormatError(
            recording.source, f"SAC holds one trace per file, not {recording.n_traces}"
        )
    stream = obspy_bridge.recording_to_stream(recording, "sac", _cast, _EXTENT)
    stream.write(out, format=NAME)


def can_write_layout(layout: Layout) -> bool:
    """True if SAC carries this layout's metadata (one float trace; trial write of zeros).

    The samples are checked when the writer closes (see :class:`BufferingWriter`).
    """
    if layout.n_traces != 1 or layout.blocks[0].dtype.kind != "f":
        return False
    return can_write(placeholder(layout))


def writer(layout: Layout, out: BinaryIO) -> BufferingWriter:
    """A SAC writer that collects the rows and writes the file at close (small files)."""
    return BufferingWriter(layout, out, NAME, write, can_write)
