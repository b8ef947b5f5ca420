"""Seismic Unix (SU): SEG-Y trace headers + IEEE float32 samples, no file headers.

SU files carry the byte order of the machine that wrote them; both are read. There is no
magic number, so the check is structural: a positive sample count in the first trace header
(bytes 115-116, unsigned), a file size that is a whole number of such traces, and the same
sample count in the last trace header. The sample interval (µs, bytes 117-118) is a two's
complement int16 as in SEG-Y: 0 means not SU; a file so structured whose interval is negative
(e.g. -2, not 65534 µs) is refused with that reason. Timing as in
:mod:`shared_code.formats.traceheader`. Samples are float32; written files keep the input's
byte order (little-endian by default) and trace header words.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared_code.formats import segy, traceheader
from shared_code.formats.errors import FormatError
from shared_code.formats.streaming import Layout, layout_of, write_whole
from shared_code.waveforms import Recording

NAME = "SU"
EXTENSION = "su"
_HEADER = traceheader.HEADER_BYTES
#: SU's one sample format: IEEE float32 (SEG-Y code 5).
_FLOAT32 = 5


@dataclass(frozen=True)
class FileLayout:
    """What the first and last trace headers say about an SU file's traces."""

    endian: str
    n_samples: int
    interval_us: int
    n_traces: int


def probe(path: Path) -> FileLayout | None:
    """Layout of an SU file, or None if the file is not structured like one."""
    size = os.path.getsize(path)
    if size < _HEADER:
        return None
    with open(path, "rb") as fh:
        first = fh.read(_HEADER)
        for endian, order in (("little", "<"), ("big", ">")):
            ns, dt = struct.unpack_from(f"{order}Hh", first, 114)
            trace_bytes = _HEADER + 4 * ns
            # dt = 0 is no SU trace (nor any file's structure to claim); a negative dt is
            # claimed, to be refused with its reason rather than read as 65534 µs.
            if ns == 0 or dt == 0 or size % trace_bytes:
                continue
            fh.seek(size - trace_bytes + 114)
            if struct.unpack(f"{order}H", fh.read(2))[0] == ns:
                return FileLayout(endian, ns, dt, size // trace_bytes)
    return None


def is_su(path: Path) -> bool:
    """True if the file is structured as SU traces (either byte order)."""
    return probe(path) is not None


def open_source(path: Path, name: str) -> segy.TraceSource:
    """Open an SU file for reading by blocks; ``name`` is the display name used in errors."""
    layout = probe(path)
    if layout is None:
        raise FormatError(name, "not an SU file (no whole number of equal traces)")
    if layout.interval_us <= 0:
        raise FormatError(
            name,
            f"SU trace 0 bytes 117-118 (dt) hold {layout.interval_us} µs ({layout.endian}-endian):"
            " not a valid sample interval",
        )
    file = segy.TraceFile(
        path,
        name,
        offset=0,
        n_traces=layout.n_traces,
        n_samples=layout.n_samples,
        format_code=_FLOAT32,
        endian=layout.endian,
    )
    return segy.TraceSource(NAME, name, {"endian": layout.endian}, file, layout.interval_us)


def read(path: Path, name: str) -> Recording:
    """Read an SU file whole; ``name`` is the display name used in errors."""
    with open_source(path, name) as source:
        return source.recording()


def can_write(recording: Recording) -> bool:
    """True if the recording fits SU without loss: float samples, SEG-Y trace constraints."""
    return can_write_layout(layout_of(recording))


def can_write_layout(layout: Layout) -> bool:
    """True if traces of this layout fit SU without loss (float samples, SEG-Y constraints)."""
    return isinstance(segy.plan_layout(layout, floats_only=True), segy.Plan)


def writer(layout: Layout, out: BinaryIO) -> segy.TraceWriter:
    """A streaming SU writer (float32, the input's byte order; little-endian by default)."""
    planned = segy.plan_layout(layout, floats_only=True)
    if isinstance(planned, str):
        raise FormatError(layout.source, f"cannot write SU without loss: {planned}")
    endian = layout.file_headers.get("endian", "little")
    return segy.TraceWriter(layout, out, planned, endian, head=b"")


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as SU (float32, the input's byte order) to an open binary file."""
    write_whole(recording, writer(layout_of(recording), out))
