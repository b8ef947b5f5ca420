"""Trace records of SEG-Y and SU files, read by offset in bounded memory.

Traces are usually fixed-length records (what segyio requires), so a file is read by
offset, never whole: :class:`TraceFile` reads trace records or windows of samples with
``pread`` into a bounded buffer and decodes them in numpy (:mod:`segy_samples`: which
sample codes become which types). :class:`TraceSource` groups the traces by start time
(:mod:`shared_code.formats.traceheader`) into blocks read on request.

SEG-Y traces may also differ in length (:mod:`segy_walk` finds each one's offset and
sample count): :class:`VariableTraceFile` holds those, and hands each block a
:class:`TraceFile` view of its traces' length (:meth:`VariableTraceFile.of_length`). Traces
of one length that follow each other in the file are then adjacent records of that length,
so the view reads them exactly as a fixed-length file's, only its first record's offset
comes from the table.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from shared_code.formats import traceheader
from shared_code.formats.errors import FormatError
from shared_code.formats.grouping import groups_by_start, groups_by_start_and
from shared_code.formats.segy_samples import DECODED, decode_into, stored_dtype
from shared_code.formats.streaming import CHUNK_BYTES, BlockSource, Source, read_exact
from shared_code.waveforms import TraceMeta

#: A record no larger than this is read whole even for a window of it (one read per run of
#: records beats one small read per record).
_SMALL_RECORD = 16384


class _OpenFile:
    """A file descriptor and the read buffers that a :class:`TraceFile` and the per-length
    views of a :class:`VariableTraceFile` share (one buffer per file, not one per view)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        #: Reused by :meth:`TraceFile.stored_rows` and :meth:`TraceFile._windows`: one
        #: allocation per file, not one per read.
        self.buffer: np.ndarray | None = None
        self.window_buffer: np.ndarray | None = None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class TraceFile:
    """Fixed-length trace records (``header_bytes`` of headers + samples) from byte ``offset``.

    ``header_bytes`` is 240 (the standard trace header) or, in SEG-Y rev 2 files with trace
    header extensions, 240 × (1 + extensions).

    Reads go through ``pread`` into buffers of at most :data:`CHUNK_BYTES` (besides the array
    returned), so any number of threads may read at once. Used by SEG-Y and SU; also, as a
    view of the traces of one length, by :class:`VariableTraceFile`.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        offset: int,
        n_traces: int,
        n_samples: int,
        format_code: int,
        endian: str,
        header_bytes: int = traceheader.HEADER_BYTES,
    ) -> None:
        self._setup(
            name=name,
            offset=offset,
            n_traces=n_traces,
            n_samples=n_samples,
            format_code=format_code,
            endian=endian,
            header_bytes=header_bytes,
        )
        self._open = _OpenFile(path)
        #: Byte offset of each trace (file index), in a view of a variable-length file;
        #: None: trace ``i`` is at ``offset + i * trace_bytes``.
        self._offsets: np.ndarray | None = None

    def _setup(
        self,
        *,
        name: str,
        offset: int,
        n_traces: int,
        n_samples: int,
        format_code: int,
        endian: str,
        header_bytes: int,
    ) -> None:
        self.name = name
        self.header_bytes = header_bytes
        self.offset = offset
        self.n_traces = n_traces
        self.n_samples = n_samples
        self.format_code = format_code
        self.endian = endian
        self.stored = stored_dtype(format_code, endian)
        self.dtype = DECODED[format_code]
        self.trace_bytes = header_bytes + n_samples * self.stored.itemsize

    @classmethod
    def view(cls, file: VariableTraceFile, n_samples: int) -> TraceFile:
        """The traces of ``file`` that have ``n_samples`` samples, read as fixed-length records
        (at their own offsets); shares the file's descriptor and buffers."""
        view = cls.__new__(cls)
        view._setup(
            name=file.name,
            offset=0,
            n_traces=file.n_traces,
            n_samples=n_samples,
            format_code=file.format_code,
            endian=file.endian,
            header_bytes=file.header_bytes,
        )
        view._open = file.open_file
        view._offsets = file.offsets
        return view

    @property
    def _fd(self) -> int:
        return self._open.fd

    def close(self) -> None:
        self._open.close()

    def headers(self) -> np.ndarray:
        """All trace headers as one structured array (:func:`traceheader.header_dtype`)."""
        return self._header_block(0, traceheader.header_dtype(self.endian))

    def extension1(self) -> np.ndarray | None:
        """All traces' rev 2 Trace Header Extension 1 (:func:`traceheader.extension1_dtype`),
        or None if the records have no header extensions."""
        if self.header_bytes <= traceheader.HEADER_BYTES:
            return None
        return self._header_block(1, traceheader.extension1_dtype(self.endian))

    def _header_block(self, k: int, dtype: np.dtype) -> np.ndarray:
        """The ``k``-th 240-byte header block of every record, as ``dtype`` (240 bytes)."""
        everything = np.arange(self.n_traces)
        out = np.empty(self.n_traces, dtype)
        raw = out.view(np.uint8).reshape(self.n_traces, traceheader.HEADER_BYTES)
        lo = k * traceheader.HEADER_BYTES
        for pos, chunk in self._windows(everything, lo, lo + traceheader.HEADER_BYTES):
            raw[pos : pos + len(chunk)] = chunk
        return out

    def rows(self, indices: np.ndarray) -> np.ndarray:
        """Whole traces (file indices), decoded: (len(indices), n_samples)."""
        return self.columns(indices, 0, self.n_samples)

    def edges(self, indices: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """First and last ``size`` samples of the traces at these file indices, decoded.

        Consecutive records are read a boundary at a time: one read takes a record's last
        samples, the next record's header and its first samples (half the reads of two
        :meth:`columns` calls, which matters at thousands of traces)."""
        indices = np.asarray(indices, dtype=np.int64)
        n, itemsize = len(indices), self.stored.itemsize
        width = size * itemsize
        head = np.empty((n, size), self.dtype)
        tail = np.empty((n, size), self.dtype)
        gap = self.trace_bytes - 2 * width  # tail end to the next head start, bytes
        if n < 2 or gap < 0 or np.any(np.diff(indices) != 1) or 2 * width > CHUNK_BYTES:
            return self.columns(indices, 0, size), self.columns(
                indices, self.n_samples - size, self.n_samples
            )
        span = 2 * width + self.header_bytes  # tail of i, header of i+1, head of i+1
        per = max(1, CHUNK_BYTES // span)
        buffer = self._scratch(min(per, n - 1), span)
        first = self._at(int(indices[0]))
        read_exact(self._fd, buffer[0, :width].data, first + self.header_bytes, self.name)
        self._decode(buffer[:1, :width].view(self.stored), head[:1])
        tail_at = first + self.trace_bytes - width  # tail of record 0
        for pos in range(0, n - 1, per):
            count = min(per, n - 1 - pos)
            for row in range(count):
                offset = tail_at + (pos + row) * self.trace_bytes
                read_exact(self._fd, buffer[row].data, offset, self.name)
            view = buffer[:count]
            self._decode(view[:, :width].view(self.stored), tail[pos : pos + count])
            self._decode(view[:, span - width :].view(self.stored), head[pos + 1 : pos + 1 + count])
        last = tail_at + (n - 1) * self.trace_bytes
        read_exact(self._fd, buffer[0, :width].data, last, self.name)
        self._decode(buffer[:1, :width].view(self.stored), tail[n - 1 :])
        return head, tail

    def stored_rows(self, indices: np.ndarray) -> np.ndarray:
        """Whole traces as stored (file byte order, a strided view of the read buffer), when
        they are consecutive records and decoding is only a byte swap;
        otherwise :meth:`rows` (IBM floats; integers read as float64, see
        :mod:`segy_samples`). The view is valid until the next read of this file."""
        indices = np.asarray(indices, dtype=np.int64)
        n = len(indices)
        # Memory: n records, about what rows() allocates for its decoded copy (the caller's
        # chunking bounds both).
        stored, decoded = self.stored, self.dtype
        as_stored = (stored.kind, stored.itemsize) == (decoded.kind, decoded.itemsize)
        if not as_stored or n == 0 or int(indices[-1]) - int(indices[0]) != n - 1:
            return self.rows(indices)
        shared = self._open
        if shared.buffer is None or shared.buffer.size < n * self.trace_bytes:
            shared.buffer = np.empty(n * self.trace_bytes, np.uint8)
        records = shared.buffer[: n * self.trace_bytes].reshape(n, self.trace_bytes)
        read_exact(self._fd, records.reshape(-1).data, self._at(int(indices[0])), self.name)
        data = records[:, self.header_bytes :].view(self.stored)
        data.flags.writeable = False
        return data

    def columns(self, indices: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of the traces at these file indices, decoded."""
        start, stop, _ = slice(start, stop).indices(self.n_samples)
        stop = max(start, stop)
        out = np.empty((len(indices), stop - start), self.dtype)
        if out.size == 0:
            return out
        size = self.stored.itemsize
        lo = self.header_bytes + start * size
        for pos, chunk in self._windows(indices, lo, lo + (stop - start) * size):
            self._decode(chunk.view(self.stored), out[pos : pos + len(chunk)])
        return out

    def _decode(self, stored: np.ndarray, out: np.ndarray) -> None:
        decode_into(self.format_code, stored, out)

    def _windows(self, indices: np.ndarray, lo: int, hi: int) -> Iterator[tuple[int, np.ndarray]]:
        """Bytes ``[lo, hi)`` of each record at these file indices, a chunk at a time.

        Yields (position in ``indices``, uint8 array (k, hi - lo)); the array is a reused
        buffer, valid until the next step. Windows that are most of a record (or small
        records) are read as runs of whole records, narrow windows one read per record.
        """
        indices = np.asarray(indices, dtype=np.int64)
        width, record = hi - lo, self.trace_bytes
        if 2 * width >= record or record <= _SMALL_RECORD:
            per = max(1, CHUNK_BYTES // record)
            buffer = self._scratch(min(per, len(indices)), record)
            for pos, first, count in _runs(indices, per):
                view = buffer[:count]
                read_exact(self._fd, view.reshape(-1).data, self._at(first), self.name)
                yield pos, view[:, lo:hi]
        else:
            per = max(1, CHUNK_BYTES // width)
            buffer = self._scratch(min(per, len(indices)), width)
            for pos in range(0, len(indices), per):
                part = indices[pos : pos + per]
                for row, index in zip(buffer, part, strict=False):
                    read_exact(self._fd, row.data, self._at(int(index)) + lo, self.name)
                yield pos, buffer[: len(part)]

    def _at(self, index: int) -> int:
        if self._offsets is None:
            return self.offset + index * self.trace_bytes
        return int(self._offsets[index])

    def _scratch(self, rows: int, width: int) -> np.ndarray:
        """The read buffer of :meth:`_windows` (at most about CHUNK_BYTES), kept between
        calls: a fresh one per call costs a page fault per 4 KiB."""
        size, shared = rows * width, self._open
        if shared.window_buffer is None or shared.window_buffer.size < size:
            shared.window_buffer = np.empty(size, np.uint8)
        return shared.window_buffer[:size].reshape(rows, width)


def _runs(indices: np.ndarray, most: int) -> Iterator[tuple[int, int, int]]:
    """(position, first index, count) of runs of consecutive indices, at most ``most`` long."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    bounds = [0, *breaks.tolist(), len(indices)]
    for begin, end in itertools.pairwise(bounds):
        for pos in range(begin, end, most):
            yield pos, int(indices[pos]), min(most, end - pos)


class VariableTraceFile:
    """SEG-Y trace records of different lengths, at the offsets a walk of their headers found
    (:mod:`segy_walk`): ``offsets`` (bytes) and ``lengths`` (samples) per trace.

    Its traces are read through :meth:`of_length` views, one per length: the blocks of a
    :class:`TraceSource` hold traces of one length each.
    """

    def __init__(
        self,
        path: Path,
        name: str,
        *,
        offsets: np.ndarray,
        lengths: np.ndarray,
        format_code: int,
        endian: str,
        header_bytes: int,
    ) -> None:
        self.name = name
        self.offsets = offsets
        self.lengths = lengths
        self.n_traces = len(offsets)
        self.format_code = format_code
        self.endian = endian
        self.header_bytes = header_bytes
        self.dtype = DECODED[format_code]
        self.open_file = _OpenFile(path)
        self._views: dict[int, TraceFile] = {}

    def of_length(self, n_samples: int) -> TraceFile:
        """A view of the traces of ``n_samples`` samples (other indices must not be read)."""
        if n_samples not in self._views:
            self._views[n_samples] = TraceFile.view(self, n_samples)
        return self._views[n_samples]

    def close(self) -> None:
        self.open_file.close()


class TraceBlock(BlockSource):
    """A block of SEG-Y/SU traces: rows of the file at given indices, read on request."""

    def __init__(
        self,
        file: TraceFile,
        indices: np.ndarray,
        traces: list[TraceMeta],
        sampling_rate: float,
        starttime_ns: int,
    ) -> None:
        super().__init__(traces, sampling_rate, starttime_ns, file.n_samples, file.dtype)
        self._file = file
        self._indices = indices

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self._file.rows(self._indices[start:stop])

    def columns(self, start: int, stop: int) -> np.ndarray:
        return self._file.columns(self._indices, start, stop)

    def stored_rows(self, start: int, stop: int) -> np.ndarray:
        return self._file.stored_rows(self._indices[start:stop])

    def edges(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self._file.edges(self._indices, size)


class TraceSource(Source):
    """A SEG-Y or SU file open for reading by blocks: traces grouped by start time, and by
    length in a variable-length file, and by sample interval where the traces' own interval
    words differ (:func:`_own_intervals`).

    ``headers`` are the trace headers and extension 1 (or None) when the caller has read them
    already (a :class:`VariableTraceFile` always: its walk did); else they are read here.
    """

    def __init__(
        self,
        fmt: str,
        name: str,
        file_headers: dict[str, Any],
        file: TraceFile | VariableTraceFile,
        interval_us: float,
        *,
        headers: tuple[np.ndarray, np.ndarray | None] | None = None,
    ) -> None:
        self.format = fmt
        self.source = name
        self.file_headers = file_headers
        self._file = file
        try:
            if headers is None:
                if isinstance(file, VariableTraceFile):
                    raise ValueError("a variable-length file's headers come from its walk")
                headers = file.headers(), file.extension1()
            standard, extension = headers
            # A walk took each trace's length from its extension 1 where that is nonzero.
            length = None if isinstance(file, VariableTraceFile) else file.n_samples
            subsecond = None
            carried: dict[str, np.ndarray] = {}
            if extension is not None:
                subsecond = _check_extension1(extension, file.header_bytes, length, name)
                carried = {n: extension[n].astype(np.int64) for n in traceheader.EXTENSION1_CARRIED}
            table = traceheader.HeaderTable.from_headers(standard, carried)
            metas = [TraceMeta(index=i, headers=h) for i, h in enumerate(table.rows())]
            starts = traceheader.start_times_ns(standard, name, subsecond)
            intervals = _own_intervals(standard, extension, interval_us)
        except BaseException:
            file.close()
            raise
        keys = [file.lengths] if isinstance(file, VariableTraceFile) else []
        keys += [] if intervals is None else [intervals]
        self.blocks = []
        for start, rows in groups_by_start_and(starts, *keys) if keys else groups_by_start(starts):
            first = int(rows[0])
            rate = 1e6 / (interval_us if intervals is None else float(intervals[first]))
            if isinstance(file, VariableTraceFile):
                block_file = file.of_length(int(file.lengths[first]))
            else:
                block_file = file
            traces = [metas[i] for i in rows]
            self.blocks.append(TraceBlock(block_file, rows, traces, rate, start))

    def close(self) -> None:
        self._file.close()


def _own_intervals(
    standard: np.ndarray, extension: np.ndarray | None, interval_us: float
) -> np.ndarray | None:
    """Each trace's own sample interval (µs) if the traces' own interval words differ among
    themselves; None if they agree (then the file's ``interval_us`` holds for all).

    A trace's own interval is its extension 1 bytes 145-152 (IEEE double) where valid (finite,
    > 0), else its bytes 117-118 (two's complement) where > 0, else the file's. ObsPy writes
    traces of different rates into one SEG-Y or SU file and reads each trace's rate from its
    bytes 117-118 (``obspy/io/segy/core.py``: "The sampling rate should be set for every
    trace"); when every trace's word says the same, the file-level precedence of
    :mod:`segy_headers` (binary header first) stands.
    """
    own = standard["TRACE_SAMPLE_INTERVAL"].astype(np.float64)
    if extension is not None:
        extended = extension["ExtSampleInterval"].astype(np.float64)
        own = np.where(np.isfinite(extended) & (extended > 0), extended, own)
    valid = np.isfinite(own) & (own > 0)
    values = own[valid]
    if values.size == 0 or bool(np.all(values == values[0])):
        return None
    return np.where(valid, own, interval_us)


def _check_extension1(
    extension: np.ndarray, header_bytes: int, length: int | None, name: str
) -> np.ndarray:
    """Check that every record's second header is Trace Header Extension 1 of a trace of the
    file's ``length`` (None: not checked, each trace's own) with the file's number of header
    extensions; return its "nanoseconds to add to Second of minute" (bytes 141-144)."""
    extensions = header_bytes // traceheader.HEADER_BYTES - 1
    count = extension["ExtSampleCount"]
    checks = (
        (
            ~np.isin(extension["HeaderName"], traceheader.EXTENSION1_NAMES),
            "is not Trace Header Extension 1: its name (bytes 233-240) is {}",
            "HeaderName",
        ),
        (
            (count != 0) & (count != length) if length is not None else np.zeros(len(count), bool),
            f"has {{}} samples (extension 1 bytes 137-140), the file's traces {length}",
            "ExtSampleCount",
        ),
        (
            (extension["ExtensionCount"] != 0) & (extension["ExtensionCount"] != extensions),
            f"has {{}} trace header extensions (extension 1 bytes 157-158), the file "
            f"{extensions}: a number varying per trace is not supported",
            "ExtensionCount",
        ),
    )
    for wrong, message, field in checks:
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise FormatError(name, f"trace {i} " + message.format(extension[field][i]))
    return np.asarray(extension["NanosecondsOfSecond"], dtype=np.int64)
