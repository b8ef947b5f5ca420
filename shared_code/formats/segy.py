"""SEG-Y rev 0/1/2.0/2.1: big- or little-endian, every sample format but 4, 7 and 15.

The format family's entry points (content check, streaming and whole-file readers and
writers); the work is split by concern:

* :mod:`~shared_code.formats.segy_samples`: sample format codes and their decoding, IBM
  floats exactly; which codes become which types (integers that fit int32 stay integers;
  64-bit and unsigned 32-bit integers and IEEE doubles are read as float64, decimated as
  floats and written as float32).
* :mod:`~shared_code.formats.segy_headers`: the textual and binary headers (sample count and
  interval and which header word wins, byte order, rev 2.0/2.1 trace header extensions) and
  the refusals, each naming the header bytes and values concerned.
* :mod:`~shared_code.formats.trace_file`: fixed-length trace records read by offset in
  bounded memory (shared with SU); start times follow :mod:`shared_code.formats.traceheader`.
* :mod:`~shared_code.formats.segy_write`: the lossless plan and the streaming trace writer.

The textual and binary headers come from segyio where it reads the file as we do, else they
are read here (files with trace header extensions, which segyio cannot open, or header words
segyio reads otherwise). Files with trace header extensions are written as miniSEED (see
:func:`plan_layout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

from shared_code.formats.errors import FormatError
from shared_code.formats.segy_headers import (
    BYTE_ORDER_CONSTANT,
    EXTENSIONS_KEY,
    FILE_HEADER_BYTES,
    TEXT_BYTES,
    FileLayout,
    check_layout,
    damaged_layout,
    file_headers_by_hand,
    file_headers_by_segyio,
    probe,
)
from shared_code.formats.segy_samples import (
    FORMAT_SIZES,
    SUPPORTED_FORMATS,
    ibm_to_float32,
)
from shared_code.formats.segy_write import (
    MAX_HEADER_WORD,
    Plan,
    TraceWriter,
    file_header_bytes,
    plan,
    plan_layout,
)
from shared_code.formats.streaming import Layout, fits_int32, layout_of, write_whole
from shared_code.formats.trace_file import TraceBlock, TraceFile, TraceSource
from shared_code.waveforms import Recording

__all__ = [
    "BYTE_ORDER_CONSTANT",
    "EXTENSION",
    "EXTENSIONS_KEY",
    "FILE_HEADER_BYTES",
    "FORMAT_SIZES",
    "MAX_HEADER_WORD",
    "NAME",
    "SUPPORTED_FORMATS",
    "TEXT_BYTES",
    "FileLayout",
    "Plan",
    "TraceBlock",
    "TraceFile",
    "TraceSource",
    "TraceWriter",
    "can_write",
    "can_write_layout",
    "check_layout",
    "damaged_layout",
    "file_header_bytes",
    "ibm_to_float32",
    "is_segy",
    "open_source",
    "plan",
    "plan_layout",
    "probe",
    "read",
    "write",
    "writer",
]

NAME = "SEGY"
EXTENSION = "segy"


def is_segy(path: Path) -> bool:
    """True if the file's headers are SEG-Y's (a cheap check of the first 3840 bytes)."""
    return probe(path) is not None


def damaged_reason(path: Path, name: str) -> str | None:
    """Why a file that looks like SEG-Y (a textual header, then a binary one) but that no
    reader accepted cannot be read, naming the header bytes; None if it does not look so."""
    layout = damaged_layout(path)
    if layout is None:
        return None
    try:
        check_layout(layout, name)
    except FormatError as exc:
        return exc.reason
    return None


def open_source(path: Path, name: str) -> TraceSource:
    """Open a SEG-Y file for reading by blocks; ``name`` is the display name used in errors."""
    layout = probe(path) or damaged_layout(path)
    if layout is None:
        raise FormatError(name, "not a SEG-Y file")
    n_traces = check_layout(layout, name)
    if layout.extra_trace_headers:
        textual, binary = file_headers_by_hand(path, layout)
    else:
        textual, binary = file_headers_by_segyio(path, name, layout, n_traces)
    file = TraceFile(
        path,
        name,
        offset=layout.data_offset,
        n_traces=n_traces,
        n_samples=layout.n_samples,
        format_code=layout.format_code,
        endian=layout.endian,
        header_bytes=layout.header_bytes,
    )
    file_headers: dict[str, Any] = {"endian": layout.endian, "textual": textual, "binary": binary}
    if layout.extra_trace_headers:
        file_headers[EXTENSIONS_KEY] = layout.extra_trace_headers
    return TraceSource(NAME, name, file_headers, file, layout.interval_us)


def read(path: Path, name: str) -> Recording:
    """Read a SEG-Y file whole; ``name`` is the display name used in errors."""
    with open_source(path, name) as source:
        return source.recording()


def can_write(recording: Recording) -> bool:
    """True if :func:`write` can carry the recording without loss (see :func:`plan`)."""
    return isinstance(plan(recording), Plan)


def can_write_layout(layout: Layout) -> bool:
    """True if :func:`writer` can carry traces of this layout (see :func:`plan_layout`)."""
    return isinstance(plan_layout(layout), Plan)


def writer(layout: Layout, out: BinaryIO) -> TraceWriter:
    """A streaming SEG-Y writer (int32 or IEEE float) for this layout, into an open file."""
    planned = plan_layout(layout)
    if isinstance(planned, str):
        raise FormatError(layout.source, f"cannot write SEG-Y without loss: {planned}")
    fh = layout.file_headers
    endian = fh.get("endian", "big")
    head = file_header_bytes(
        planned,
        layout.n_traces,
        endian=endian,
        textual=fh.get("textual", []),
        binary=fh.get("binary", {}),
    )
    return TraceWriter(layout, out, planned, endian, head)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as SEG-Y (int32 or IEEE float) to an open binary file."""
    if not all(fits_int32(b.data) for b in recording.blocks):
        raise FormatError(recording.source, "cannot write SEG-Y: integer samples exceed int32")
    write_whole(recording, writer(layout_of(recording), out))
