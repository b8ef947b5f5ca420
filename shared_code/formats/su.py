"""Seismic Unix (SU): SEG-Y trace headers + IEEE float32 samples, no file headers.

SU files carry the byte order of the machine that wrote them; both are read. There is no
magic number, so the check is structural: a positive sample count and interval (µs) in the
first trace header (bytes 115-118), a file size that is a whole number of such traces, and
the same sample count in the last trace header. Timing as in
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
from shared_code.formats.grouping import blocks_by_start
from shared_code.waveforms import Recording, TraceMeta

NAME = "SU"
EXTENSION = "su"
_HEADER = traceheader.HEADER_BYTES


@dataclass(frozen=True)
class Layout:
    endian: str
    n_samples: int
    interval_us: int
    n_traces: int


def probe(path: Path) -> Layout | None:
    """Layout of an SU file, or None if the file is not structured like one."""
    size = os.path.getsize(path)
    if size < _HEADER:
        return None
    with open(path, "rb") as fh:
        first = fh.read(_HEADER)
        for endian, order in (("little", "<"), ("big", ">")):
            ns, dt = struct.unpack_from(f"{order}HH", first, 114)
            trace_bytes = _HEADER + 4 * ns
            if ns == 0 or dt == 0 or size % trace_bytes:
                continue
            fh.seek(size - trace_bytes + 114)
            if struct.unpack(f"{order}H", fh.read(2))[0] == ns:
                return Layout(endian, ns, dt, size // trace_bytes)
    return None


def is_su(path: Path) -> bool:
    """True if the file is structured as SU traces (either byte order)."""
    return probe(path) is not None


def read(path: Path, name: str) -> Recording:
    """Read an SU file; ``name`` is the display name used in errors."""
    import segyio.su

    layout = probe(path)
    if layout is None:
        raise FormatError(name, "not an SU file (no whole number of equal traces)")
    with segyio.su.open(str(path), ignore_geometry=True, endian=layout.endian) as f:
        data = f.trace.raw[:]
    trace_bytes = _HEADER + 4 * layout.n_samples
    headers = segy.read_trace_headers(path, layout.endian, 0, trace_bytes, layout.n_traces)
    metas = [
        TraceMeta(index=i, headers=h) for i, h in enumerate(traceheader.headers_to_dicts(headers))
    ]
    starts = traceheader.start_times_ns(headers, name)
    blocks = blocks_by_start(data, starts, 1e6 / layout.interval_us, metas)
    return Recording(NAME, blocks, source=name, file_headers={"endian": layout.endian})


def can_write(recording: Recording) -> bool:
    """True if the recording fits SU without loss: float samples, SEG-Y trace constraints."""
    return isinstance(segy.plan(recording, floats_only=True), segy.Plan)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as SU (float32, the input's byte order) to an open binary file."""
    layout = segy.plan(recording, floats_only=True)
    if isinstance(layout, str):
        raise FormatError(recording.source, f"cannot write SU without loss: {layout}")
    endian = recording.file_headers.get("endian", "little")
    segy.write_segyio(
        layout, out, endian=endian, textual=[], binary={}, skip=segy.FILE_HEADER_BYTES
    )
