"""GSE2 (WID2 waveform sections, CM6 or INT data) through ObsPy.

Times are carried to the ms, rates as ``%11.6f``, no location code: a recording is written as
GSE2 only when a trial write and read-back reproduces it exactly (integer samples).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shared_code.formats import obspy_bridge
from shared_code.formats.errors import FormatError
from shared_code.formats.streaming import BufferingWriter, Layout, placeholder
from shared_code.waveforms import Recording

NAME = "GSE2"
EXTENSION = "gse2"
_SCAN_BYTES = 65536


def is_gse2(path: Path) -> bool:
    """True if a line of the first 64 kB starts with ``WID2`` (a GSE2 waveform header)."""
    with open(path, "rb") as fh:
        head = fh.read(_SCAN_BYTES)
    return head.startswith(b"WID2") or b"\nWID2 " in head


def read(path: Path, name: str) -> Recording:
    """Read a GSE2 file (one or more WID2 sections; checksums verified)."""
    stream = obspy_bridge.read_stream(path, name, NAME)
    return obspy_bridge.stream_to_recording(stream, NAME, name, "gse2")


def _cast(data: np.ndarray) -> np.ndarray:
    return data.astype(np.int32)


def can_write(recording: Recording) -> bool:
    """True if GSE2 carries the recording without loss (integers; checked by a trial write)."""
    if not recording.blocks or any(b.data.dtype.kind not in "iu" for b in recording.blocks):
        return False
    return obspy_bridge.survives(recording, write, read, _cast)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write an integer recording as GSE2 (CM6) to an open binary file."""
    if any(b.data.dtype.kind not in "iu" for b in recording.blocks):
        raise FormatError(recording.source, "GSE2 (CM6) carries integer samples only")
    stream = obspy_bridge.recording_to_stream(recording, "gse2", _cast)
    with tempfile.TemporaryDirectory(prefix="ccs-gse2-") as tmp:
        path = Path(tmp) / "out.gse2"
        stream.write(str(path), format=NAME)  # ObsPy's GSE2 writer needs a file name
        with open(path, "rb") as src:
            shutil.copyfileobj(src, out)


def can_write_layout(layout: Layout) -> bool:
    """True if GSE2 carries this layout's metadata (integer samples; trial write of zeros).

    The samples are checked when the writer closes (see :class:`BufferingWriter`).
    """
    if not layout.blocks or any(b.dtype.kind not in "iu" for b in layout.blocks):
        return False
    return can_write(placeholder(layout))


def writer(layout: Layout, out: BinaryIO) -> BufferingWriter:
    """A GSE2 writer that collects the rows and writes the file at close (small files)."""
    return BufferingWriter(layout, out, NAME, write, can_write)
