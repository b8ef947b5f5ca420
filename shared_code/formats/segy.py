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
* :mod:`~shared_code.formats.trace_file`: trace records read by offset in bounded memory
  (shared with SU); start times follow :mod:`shared_code.formats.traceheader`.
* :mod:`~shared_code.formats.segy_walk`: traces that differ in length (as ObsPy writes them),
  found by walking the trace headers when the file is not a whole number of traces of the
  length the file headers give, or when a trace's own count disagrees with that length.
* :mod:`~shared_code.formats.segy_write`: the lossless plan and the streaming trace writer.

The textual and binary headers come from segyio where it reads the file as we do, else they
are read here (files with trace header extensions, which segyio cannot open, or header words
segyio reads otherwise). Files with trace header extensions are written as miniSEED (see
:func:`plan_layout`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared_code.formats import traceheader
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
    not_whole,
    probe,
)
from shared_code.formats.segy_samples import (
    FORMAT_SIZES,
    SUPPORTED_FORMATS,
    ibm_to_float32,
)
from shared_code.formats.segy_walk import Stop, Walk, walk
from shared_code.formats.segy_write import (
    MAX_HEADER_WORD,
    Plan,
    TraceWriter,
    file_header_bytes,
    plan,
    plan_layout,
)
from shared_code.formats.streaming import Layout, fits_int32, layout_of, write_whole
from shared_code.formats.trace_file import TraceBlock, TraceFile, TraceSource, VariableTraceFile
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
    "VariableTraceFile",
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
    """Open a SEG-Y file for reading by blocks; ``name`` is the display name used in errors.

    Traces of the length the file headers give (:mod:`segy_headers`), unless the file is not
    a whole number of those or a trace's own count disagrees: then the trace headers are
    walked (:mod:`segy_walk`), and a walk that ends exactly at the end of the file gives each
    trace's offset and length. A file that is not a whole number of traces and whose walk
    does not end there is refused (truncated, or a count of 0), naming the trace, its byte
    offset and the header word.
    """
    layout = probe(path) or damaged_layout(path)
    if layout is None:
        raise FormatError(name, "not a SEG-Y file")
    n_traces = check_layout(layout, name)
    if n_traces is None:
        walked = walk(path, layout)
        if isinstance(walked, Stop):
            what = "truncated SEG-Y" if walked.truncated else "SEG-Y trace lengths do not add up"
            raise FormatError(
                name, f"{what}: {walked.reason}; read as traces of one length, {not_whole(layout)}"
            )
        return _variable_source(path, name, layout, walked)
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
    stop: Stop | None = None
    try:
        headers = file.headers(), file.extension1()
        if _own_counts_differ(*headers, layout.n_samples):
            # A whole number of traces by chance (e.g. lengths 100, 50, 150, 100 fill four of
            # 100): the traces' own counts are right if they walk exactly to the end.
            walked = walk(path, layout)
            if isinstance(walked, Walk) and len(np.unique(walked.lengths)) > 1:
                file.close()
                return _variable_source(path, name, layout, walked)
            stop = walked if isinstance(walked, Stop) else None
        if layout.extra_trace_headers:
            textual, binary = file_headers_by_hand(path, layout)
        else:
            textual, binary = file_headers_by_segyio(path, name, layout, n_traces)
    except BaseException:
        file.close()
        raise
    file_headers = _file_headers(layout, textual, binary)
    try:
        return TraceSource(NAME, name, file_headers, file, layout.interval_us, headers=headers)
    except FormatError as exc:
        if stop is None:
            raise
        raise FormatError(
            name,
            f"{exc.reason}; as traces of different lengths (as the trace headers' own counts "
            f"differ from the file's {layout.n_samples}): {stop.reason}",
        ) from exc


def _own_counts_differ(standard: np.ndarray, extension: np.ndarray | None, n_samples: int) -> bool:
    """True if a trace's own sample count (extension 1 bytes 137-140 where nonzero, else bytes
    115-116; 0 is no count) is not the file's."""
    own = standard["TRACE_SAMPLE_COUNT"].astype(np.int64)
    if extension is not None:
        extended = extension["ExtSampleCount"].astype(np.int64)
        own = np.where(extended != 0, extended, own)
    return bool(np.any((own != 0) & (own != n_samples)))


def _variable_source(path: Path, name: str, layout: FileLayout, walked: Walk) -> TraceSource:
    """A source on traces of different lengths (segyio reads fixed-length files only, so the
    file headers are read by hand)."""
    n = len(walked.offsets)
    raw = walked.headers
    standard = np.ascontiguousarray(raw[:, : traceheader.HEADER_BYTES])
    headers = standard.view(traceheader.header_dtype(layout.endian)).reshape(n)
    extension = None
    if raw.shape[1] > traceheader.HEADER_BYTES:
        second = np.ascontiguousarray(raw[:, traceheader.HEADER_BYTES :])
        extension = second.view(traceheader.extension1_dtype(layout.endian)).reshape(n)
    textual, binary = file_headers_by_hand(path, layout)
    file = VariableTraceFile(
        path,
        name,
        offsets=walked.offsets,
        lengths=walked.lengths,
        format_code=layout.format_code,
        endian=layout.endian,
        header_bytes=layout.header_bytes,
    )
    file_headers = _file_headers(layout, textual, binary)
    interval = layout.interval_us
    return TraceSource(NAME, name, file_headers, file, interval, headers=(headers, extension))


def _file_headers(
    layout: FileLayout, textual: list[bytes], binary: dict[str, int]
) -> dict[str, Any]:
    file_headers: dict[str, Any] = {"endian": layout.endian, "textual": textual, "binary": binary}
    if layout.extra_trace_headers:
        file_headers[EXTENSIONS_KEY] = layout.extra_trace_headers
    return file_headers


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
