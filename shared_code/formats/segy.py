"""SEG-Y rev 0/1/2: big- or little-endian, samples int16 (3), int32 (2), IBM (1) or IEEE (5) float.

Traces are fixed-length records (what segyio and rev 0/1 require), so the file is read by
offset, never whole: :class:`TraceFile` reads trace records or windows of samples with
``pread`` into a bounded buffer and decodes them in numpy (IBM float bit for bit as segyio's
``ibm_native``). Integers stay integers (int16 or int32); floats become float32. Start times
follow :mod:`shared_code.formats.traceheader`. The textual and binary headers come from segyio,
except in files with trace header extensions (which segyio cannot open): read here.

Sample count and interval (µs): the first of these that is nonzero. SEG-Y rev 2.0 (SEG
Technical Standards Committee, March 2017), "Binary File Header": the extended words "override"
the standard ones when nonzero; extended words win over 16-bit ones (which writers leave 0 or
saturate at 32767 when the value does not fit), and the file's over the first trace's::

    samples:  binary 3269-3272 (rev >= 2) > first trace's extension 1 bytes 137-140
              > binary 3221-3222 > first trace's bytes 115-116
    interval: binary 3273-3280 (rev >= 2, IEEE double) > first trace's extension 1 bytes
              145-152 (IEEE double) > binary 3217-3218 > first trace's bytes 117-118

SEG-Y rev 2 trace header extensions: binary header bytes 3507-3510 (int32, rev >= 2) give the
"maximum number of additional 240 byte trace headers" N; each record is then the standard
header, N more 240-byte headers and the samples. The first of them must be "SEG-Y Trace Header
Extension 1" (named ``SEG00001`` or unnamed in its bytes 233-240); its sub-second start
("nanoseconds to add to Second of minute", bytes 141-144) is applied, and a trace whose own
sample count (bytes 137-140) or header count (bytes 157-158) differs from the file's is
refused: variable-length traces are not read. The byte order is the rev 2 constant's (binary
bytes 3297-3300, 0x01020304 as written) when present, else whichever order gives a known
sample format code. Such files are written as miniSEED (see :func:`plan_layout`).

Written files keep the input's textual header, binary header and trace header words, with the
new sample count, interval (µs), sample format (2 = int32, 5 = IEEE float) and start times.
The file headers are made by segyio (its EBCDIC table and defaults); trace records are
encoded here as rows arrive (:class:`TraceWriter`), so writing needs no more memory than the
rows of one call.
"""

from __future__ import annotations

import itertools
import math
import operator
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared_code.formats import traceheader
from shared_code.formats.errors import FormatError
from shared_code.formats.grouping import groups_by_start
from shared_code.formats.streaming import (
    CHUNK_BYTES,
    BlockSource,
    Layout,
    Source,
    Writer,
    check_int32,
    fits_int32,
    layout_of,
    read_exact,
    write_whole,
)
from shared_code.waveforms import Recording, TraceMeta

NAME = "SEGY"
EXTENSION = "segy"

TEXT_BYTES = 3200
FILE_HEADER_BYTES = 3600
#: Every sample format code SEG-Y rev 2 defines, with its size in bytes.
FORMAT_SIZES = {
    1: 4,
    2: 4,
    3: 2,
    4: 4,
    5: 4,
    6: 8,
    7: 3,
    8: 1,
    9: 8,
    10: 4,
    11: 2,
    12: 8,
    15: 3,
    16: 1,
}
#: The codes this reader decodes.
SUPPORTED_FORMATS = {1: "IBM float", 2: "int32", 3: "int16", 5: "IEEE float"}
#: Stored sample type (numpy kind and size, byte order apart) of each supported code; IBM
#: floats are read as 32-bit words and converted.
_STORED = {1: "u4", 2: "i4", 3: "i2", 5: "f4"}
#: Sample type a reader returns for each supported code.
_DECODED: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.int32),
    3: np.dtype(np.int16),
    5: np.dtype(np.float32),
}
#: Largest sample count and interval (µs) written: both int16 for rev 0/1 readers (ObsPy reads
#: the sample count as signed).
MAX_HEADER_WORD = 32767
#: SEG-Y rev 2 byte-order constant (binary header bytes 3297-3300) as its writer's order reads it.
BYTE_ORDER_CONSTANT = 0x01020304
#: Key of ``file_headers`` holding the number of rev 2 trace header extensions per trace.
EXTENSIONS_KEY = "trace_header_extensions"
#: Fraction of text-like bytes (ASCII or EBCDIC printable) expected in a textual header.
_TEXT_LIKE = 0.9
_TEXT_BYTES_SET = frozenset({0, 10, 13}).union(
    range(0x20, 0x7F),  # ASCII printable
    *(range(lo, lo + 10) for lo in (0x4A, 0x5A, 0x6A, 0x7A, 0x81, 0x91, 0xA1)),  # EBCDIC
    *(range(lo, lo + 10) for lo in (0xC0, 0xD0, 0xE0, 0xF0)),  # EBCDIC letters, digits
)
#: A record no larger than this is read whole even for a window of it (one read per run of
#: records beats one small read per record).
_SMALL_RECORD = 16384


@dataclass(frozen=True)
class FileLayout:
    """What the file and binary headers say about a SEG-Y file's trace layout."""

    endian: str
    format_code: int
    n_samples: int
    #: Sample interval in µs; not a whole number only from the rev 2 IEEE-double words.
    interval_us: float
    ext_text_headers: int
    #: Rev 2 additional 240-byte trace headers per trace (binary bytes 3507-3510).
    extra_trace_headers: int
    size: int

    @property
    def data_offset(self) -> int:
        return FILE_HEADER_BYTES + TEXT_BYTES * max(self.ext_text_headers, 0)

    @property
    def header_bytes(self) -> int:
        """Bytes of trace headers per record: the standard header and its extensions."""
        return traceheader.HEADER_BYTES * (1 + max(self.extra_trace_headers, 0))

    @property
    def trace_bytes(self) -> int:
        return self.header_bytes + self.n_samples * FORMAT_SIZES[self.format_code]


def probe(path: Path) -> FileLayout | None:
    """Layout of a SEG-Y file, or None if the headers do not look like SEG-Y."""
    size = os.path.getsize(path)
    if size < FILE_HEADER_BYTES:
        return None
    with open(path, "rb") as fh:
        head = fh.read(FILE_HEADER_BYTES)
        first: dict[int, bytes] = {}  # first trace's headers, read once per data offset
        for endian, order in _byte_orders(head):
            code = struct.unpack_from(f"{order}H", head, 3224)[0]
            if code not in FORMAT_SIZES:
                continue
            major = head[3500]
            interval: float
            short_interval, short_ns = struct.unpack_from(f"{order}HxxH", head, 3216)
            interval, ns, extra = 0, 0, 0
            if major >= 2:
                ns = int(_positive(struct.unpack_from(f"{order}i", head, 3268)[0]))
                interval = _positive(struct.unpack_from(f"{order}d", head, 3272)[0])
                extra = struct.unpack_from(f"{order}i", head, 3506)[0]
            ext_text = struct.unpack_from(f"{order}h", head, 3504)[0]
            offset = FILE_HEADER_BYTES + TEXT_BYTES * max(ext_text, 0)
            if offset not in first:
                fh.seek(offset)
                first[offset] = fh.read(2 * traceheader.HEADER_BYTES)
            trace = first[offset]
            if extra > 0 and len(trace) >= 2 * traceheader.HEADER_BYTES:
                # Trace Header Extension 1: bytes 137-140 (count), 145-152 (interval, µs).
                ext_ns, ext_dt = struct.unpack_from(f"{order}Ixxxxd", trace, 240 + 136)
                ns = ns or ext_ns
                interval = interval or _positive(ext_dt)
            ns = ns or short_ns
            interval = interval or short_interval
            if len(trace) >= traceheader.HEADER_BYTES:
                trace_ns, trace_dt = struct.unpack_from(f"{order}HH", trace, 114)
                ns = ns or trace_ns
                interval = interval or trace_dt
            if ns <= 0:
                continue
            layout = FileLayout(
                endian=endian,
                format_code=code,
                n_samples=ns,
                interval_us=interval,
                ext_text_headers=ext_text,
                extra_trace_headers=extra,
                size=size,
            )
            whole = (size - layout.data_offset) % layout.trace_bytes == 0
            if whole or _looks_like_text(head[:TEXT_BYTES]):
                return layout
    return None


def _byte_orders(head: bytes) -> list[tuple[str, str]]:
    """Byte orders to try: the rev 2 constant's (bytes 3297-3300) alone if it is there."""
    orders = [("big", ">"), ("little", "<")]
    for endian, order in orders:
        if struct.unpack_from(f"{order}I", head, 3296)[0] == BYTE_ORDER_CONSTANT:
            return [(endian, order)]
    return orders


def _positive(value: float) -> float:
    """``value`` if it is a finite number > 0, else 0 (unset or garbage in a header word)."""
    return value if math.isfinite(value) and value > 0 else 0


def _looks_like_text(block: bytes) -> bool:
    text_like = sum(1 for b in block if b in _TEXT_BYTES_SET)
    return text_like >= _TEXT_LIKE * len(block)


def is_segy(path: Path) -> bool:
    """True if the file's headers are SEG-Y's (a cheap check of the first 3840 bytes)."""
    return probe(path) is not None


def check_layout(layout: FileLayout, name: str) -> int:
    """Refuse what this reader cannot read right; return the number of traces."""
    code = layout.format_code
    if code not in SUPPORTED_FORMATS:
        supported = ", ".join(f"{c} ({d})" for c, d in SUPPORTED_FORMATS.items())
        raise FormatError(
            name, f"unsupported SEG-Y sample format code {code}; supported: {supported}"
        )
    if layout.ext_text_headers < 0:
        raise FormatError(name, "variable number of extended textual headers is not supported")
    traces_bytes = layout.size - layout.data_offset
    extensions = layout.extra_trace_headers
    if extensions < 0 or (extensions and layout.header_bytes > traces_bytes):
        raise FormatError(
            name,
            f"SEG-Y rev 2 binary header (bytes 3507-3510) announces {extensions} trace header "
            f"extensions per trace, which do not fit the {traces_bytes} bytes of traces",
        )
    if layout.interval_us <= 0:
        raise FormatError(
            name, "no sample interval in the binary header (bytes 3217-3218) or trace header"
        )
    n_traces, extra = divmod(traces_bytes, layout.trace_bytes)
    if n_traces == 0 or extra:
        headers = "240-byte header"
        if extensions:
            headers += f" + {extensions} 240-byte trace header extensions"
        raise FormatError(
            name,
            f"truncated or variable-length SEG-Y: {traces_bytes} bytes after the file headers "
            f"is not a whole number of {layout.trace_bytes}-byte traces ({headers} + "
            f"{layout.n_samples} samples × {FORMAT_SIZES[layout.format_code]} bytes): "
            f"{n_traces} traces and {extra} bytes over",
        )
    return n_traces


# --- reading -------------------------------------------------------------------------------


def ibm_to_float32(words: np.ndarray) -> np.ndarray:
    """IBM System/360 single-precision floats (uint32 words) as float32, bit for bit as segyio.

    segyio's ``ibm_native`` (the table-driven conversion of SU and others): the leading hex
    digit of the fraction picks a shift that normalises it, exact for normalised IBM floats of
    float32 range. As there, magnitudes above float32's become the bit pattern 0x7FFFFFFF
    (a NaN) with the sign, those below 2**-130 (IBM 0x21200000) become +0, and unnormalised
    fractions are not renormalised.
    """
    words = words.astype(np.uint32, copy=False)
    fraction = words & np.uint32(0x00FFFFFF)
    digit = fraction >> np.uint32(21)  # top 3 fraction bits: how far to shift
    exponent = ((words & np.uint32(0x7F000000)) - _IBM_BIAS[digit]) << np.uint32(1)
    bits = fraction * _IBM_SHIFT[digit] + exponent  # uint32 wrap-around as in C
    magnitude = words & np.uint32(0x7FFFFFFF)
    bits[magnitude > _IBM_MAX] = np.uint32(0x7FFFFFFF)
    bits |= words & np.uint32(0x80000000)
    bits[magnitude < _IBM_MIN] = 0
    return bits.view(np.float32)


#: segyio's ``ibm_native`` tables, by the fraction's top 3 bits: exponent bias and multiplier.
_IBM_BIAS = np.array([0x21800000, 0x21400000, 0x21000000, 0x21000000] + [0x20C00000] * 4, np.uint32)
_IBM_SHIFT = np.array([8, 4, 2, 2, 1, 1, 1, 1], np.uint32)
#: Largest IBM magnitude within float32 range, smallest converted (below: zero).
_IBM_MAX = np.uint32(0x611FFFFF)
_IBM_MIN = np.uint32(0x21200000)


class TraceFile:
    """Fixed-length trace records (``header_bytes`` of headers + samples) from byte ``offset``.

    ``header_bytes`` is 240 (the standard trace header) or, in SEG-Y rev 2 files with trace
    header extensions, 240 × (1 + extensions).

    Reads go through ``pread`` into buffers of at most :data:`CHUNK_BYTES` (besides the array
    returned), so any number of threads may read at once. Used by SEG-Y and SU.
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
        self.name = name
        self.header_bytes = header_bytes
        self.offset = offset
        self.n_traces = n_traces
        self.n_samples = n_samples
        self.format_code = format_code
        self.endian = endian
        order = ">" if endian == "big" else "<"
        self.stored = np.dtype(order + _STORED[format_code])
        self.dtype = _DECODED[format_code]
        self.trace_bytes = header_bytes + n_samples * self.stored.itemsize
        self._fd = os.open(path, os.O_RDONLY)
        #: Reused by :meth:`stored_rows` and :meth:`_windows`: one allocation per file, not
        #: one per read.
        self._buffer: np.ndarray | None = None
        self._window_buffer: np.ndarray | None = None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

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
        otherwise :meth:`rows`. The view is valid until the next read of this file."""
        indices = np.asarray(indices, dtype=np.int64)
        n = len(indices)
        # Memory: n records, about what rows() allocates for its decoded copy (the caller's
        # chunking bounds both).
        if self.format_code == 1 or n == 0 or int(indices[-1]) - int(indices[0]) != n - 1:
            return self.rows(indices)
        if self._buffer is None or self._buffer.size < n * self.trace_bytes:
            self._buffer = np.empty(n * self.trace_bytes, np.uint8)
        records = self._buffer[: n * self.trace_bytes].reshape(n, self.trace_bytes)
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
        if self.format_code == 1:
            out[...] = ibm_to_float32(stored)
        else:
            out[...] = stored  # numpy swaps the bytes if the file's order is not native

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
        return self.offset + index * self.trace_bytes

    def _scratch(self, rows: int, width: int) -> np.ndarray:
        """The read buffer of :meth:`_windows` (at most about CHUNK_BYTES), kept between
        calls: a fresh one per call costs a page fault per 4 KiB."""
        size = rows * width
        if self._window_buffer is None or self._window_buffer.size < size:
            self._window_buffer = np.empty(size, np.uint8)
        return self._window_buffer[:size].reshape(rows, width)


def _runs(indices: np.ndarray, most: int) -> Iterator[tuple[int, int, int]]:
    """(position, first index, count) of runs of consecutive indices, at most ``most`` long."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    bounds = [0, *breaks.tolist(), len(indices)]
    for begin, end in itertools.pairwise(bounds):
        for pos in range(begin, end, most):
            yield pos, int(indices[pos]), min(most, end - pos)


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
    """A SEG-Y or SU file open for reading by blocks (traces grouped by start time)."""

    def __init__(
        self,
        fmt: str,
        name: str,
        file_headers: dict[str, Any],
        file: TraceFile,
        interval_us: float,
    ) -> None:
        self.format = fmt
        self.source = name
        self.file_headers = file_headers
        self._file = file
        try:
            headers = file.headers()
            extension = file.extension1()
            subsecond = None
            carried: dict[str, np.ndarray] = {}
            if extension is not None:
                subsecond = _check_extension1(extension, file, name)
                carried = {n: extension[n].astype(np.int64) for n in traceheader.EXTENSION1_CARRIED}
            table = traceheader.HeaderTable.from_headers(headers, carried)
            metas = [TraceMeta(index=i, headers=h) for i, h in enumerate(table.rows())]
            groups = groups_by_start(traceheader.start_times_ns(headers, name, subsecond))
        except BaseException:
            file.close()
            raise
        rate = 1e6 / interval_us
        self.blocks = [
            TraceBlock(file, rows, [metas[i] for i in rows], rate, start) for start, rows in groups
        ]

    def close(self) -> None:
        self._file.close()


def _check_extension1(extension: np.ndarray, file: TraceFile, name: str) -> np.ndarray:
    """Check that every record's second header is Trace Header Extension 1 of a trace of the
    file's length; return its "nanoseconds to add to Second of minute" (bytes 141-144)."""
    extensions = file.header_bytes // traceheader.HEADER_BYTES - 1
    checks = (
        (
            ~np.isin(extension["HeaderName"], traceheader.EXTENSION1_NAMES),
            "is not Trace Header Extension 1: its name (bytes 233-240) is {}",
            "HeaderName",
        ),
        (
            (extension["ExtSampleCount"] != 0) & (extension["ExtSampleCount"] != file.n_samples),
            f"has {{}} samples (extension 1 bytes 137-140), the file {file.n_samples}: "
            "variable-length traces are not supported",
            "ExtSampleCount",
        ),
        (
            (extension["ExtensionCount"] != 0) & (extension["ExtensionCount"] != extensions),
            f"has {{}} trace header extensions (extension 1 bytes 157-158), the file "
            f"{extensions}: variable-length traces are not supported",
            "ExtensionCount",
        ),
    )
    for wrong, message, field in checks:
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise FormatError(name, f"trace {i} " + message.format(extension[field][i]))
    return np.asarray(extension["NanosecondsOfSecond"], dtype=np.int64)


def _file_headers_by_segyio(
    path: Path, name: str, layout: FileLayout, n_traces: int
) -> tuple[list[bytes], dict[str, int]]:
    """Textual headers and binary header words (by segyio name) as segyio reads them."""
    import segyio

    with segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian) as f:
        found = (f.tracecount, len(f.samples))
        textual = [bytes(f.text[i]) for i in range(1 + f.ext_headers)]
        binary = {str(k): int(v) for k, v in f.bin.items()}
    if found != (n_traces, layout.n_samples):
        raise FormatError(
            name,
            f"SEG-Y headers promise {n_traces} traces of {layout.n_samples} samples, "
            f"segyio found {found}",
        )
    return textual, binary


def _file_headers_by_hand(path: Path, layout: FileLayout) -> tuple[list[bytes], dict[str, int]]:
    """Textual headers (as ASCII, as segyio gives them) and binary header words by segyio
    name, read here: segyio cannot open files with trace header extensions."""
    import segyio

    with open(path, "rb") as fh:
        head = fh.read(layout.data_offset)
    textual = [
        _as_ascii(head[start : start + TEXT_BYTES])
        for start in (0, *range(FILE_HEADER_BYTES, layout.data_offset, TEXT_BYTES))
    ]
    order = ">" if layout.endian == "big" else "<"
    fields = sorted({(int(f), str(f)) for f in segyio.BinField.enums()})
    binary: dict[str, int] = {}
    for (byte, key), nxt in zip(fields, [*(b for b, _ in fields[1:]), 3509], strict=True):
        kind = {1: "B", 2: "h", 4: "i"}.get(nxt - byte, "i")  # 4-byte words where wider
        binary[key] = struct.unpack_from(order + kind, head, byte - 1)[0]
    binary["Interval"] = struct.unpack_from(order + "H", head, 3216)[0]
    binary["Samples"] = struct.unpack_from(order + "H", head, 3220)[0]
    binary["Unassigned2"] = layout.extra_trace_headers  # bytes 3507-3510 (segyio's name)
    return textual, binary


def _as_ascii(block: bytes) -> bytes:
    """A textual header as ASCII, converted from EBCDIC (code page 037) when it looks like it:
    EBCDIC letters and digits are bytes >= 0x81 and its space is 0x40, ASCII's 0x20."""
    spaces = block.count(0x20)
    if block.count(0x40) <= spaces and sum(1 for b in block if b >= 0x80) <= spaces:
        return block
    return block.decode("cp037").encode("ascii", "replace")


def open_source(path: Path, name: str) -> TraceSource:
    """Open a SEG-Y file for reading by blocks; ``name`` is the display name used in errors."""
    layout = probe(path)
    if layout is None:
        raise FormatError(name, "not a SEG-Y file")
    n_traces = check_layout(layout, name)
    if layout.extra_trace_headers:
        textual, binary = _file_headers_by_hand(path, layout)
    else:
        textual, binary = _file_headers_by_segyio(path, name, layout, n_traces)
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


# --- writing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How a layout maps onto fixed-length SEG-Y traces.

    ``timing`` holds each trace's start-time header fields, in file order (shared dicts).
    """

    interval_us: int
    n_samples: int
    format_code: int
    timing: list[dict[str, int]]


def plan_layout(layout: Layout, floats_only: bool = False) -> Plan | str:
    """A SEG-Y layout that carries the traces without loss, or the reason there is none.

    Lossless means: one sample count and an integer sample interval (µs) for all traces, both
    at most 32767; integers (written int32, whose range the writer checks per row) or floats
    (written IEEE float32; ``floats_only`` for SU, which has no integer format); every start
    time exact to the µs in the trace header; no SEED codes (SEG-Y has no place for them);
    no SEG-Y rev 2 trace header extensions in the input (``file_headers`` key
    :data:`EXTENSIONS_KEY`): the written standard headers alone would drop them (sub-second
    time, 64-bit sequence numbers, IEEE-double coordinates).
    """
    blocks = layout.blocks
    if not blocks:
        return "no traces"
    if layout.file_headers.get(EXTENSIONS_KEY):
        return "the input's SEG-Y rev 2 trace header extensions cannot be written"
    if len({(b.rate, b.n_samples) for b in blocks}) > 1:
        return "traces differ in sample rate or length"
    interval = Fraction(10**6) / blocks[0].rate
    n_samples = blocks[0].n_samples
    if interval.denominator != 1 or not 1 <= interval <= MAX_HEADER_WORD:
        return f"sample interval {float(interval)} µs is not an integer in 1..{MAX_HEADER_WORD}"
    if not 1 <= n_samples <= MAX_HEADER_WORD:
        return f"{n_samples} samples per trace is not in 1..{MAX_HEADER_WORD}"
    kinds = {b.dtype.kind for b in blocks}
    if kinds - {"f"} and (floats_only or kinds - {"i", "u"}):
        return f"sample types {sorted(kinds)} cannot be written without loss"
    timing: list[dict[str, int]] = []
    cache: dict[tuple[int, tuple[int, ...]], dict[str, int] | None] = {}
    for block in blocks:
        for meta in block.traces:
            if meta.network or meta.station or meta.location or meta.channel:
                return f"trace {meta.index} carries a SEED id that SEG-Y cannot hold"
            key = (block.starttime_ns, traceheader.timing_key(meta.headers))
            if key not in cache:
                cache[key] = traceheader.encode_start(block.starttime_ns, meta.headers)
            fields = cache[key]
            if fields is None:
                return f"trace {meta.index}: start time {block.starttime_ns} ns does not fit"
            timing.append(fields)
    return Plan(int(interval), n_samples, 5 if "f" in kinds else 2, timing)


def plan(recording: Recording, floats_only: bool = False) -> Plan | str:
    """:func:`plan_layout` of a recording, its integer samples checked against int32 too."""
    if not all(fits_int32(b.data) for b in recording.blocks):
        return "integer samples exceed the int32 range"
    return plan_layout(layout_of(recording), floats_only)


def can_write(recording: Recording) -> bool:
    """True if :func:`write` can carry the recording without loss (see :func:`plan`)."""
    return isinstance(plan(recording), Plan)


def can_write_layout(layout: Layout) -> bool:
    """True if :func:`writer` can carry traces of this layout (see :func:`plan_layout`)."""
    return isinstance(plan_layout(layout), Plan)


class TraceWriter(Writer):
    """Writes SEG-Y or SU: the file headers (``head``, if any) at once, then trace records.

    Each trace header is the input's words with the planned start time, sample count and
    interval; samples are int32 (format 2) or IEEE float32 (5) in the given byte order. The
    records of one :meth:`write_rows` call are built as one numpy structured array (headers
    filled a word at a time for all its traces) and written at once.
    """

    def __init__(
        self, layout: Layout, out: BinaryIO, planned: Plan, endian: str, head: bytes
    ) -> None:
        super().__init__(layout, out)
        self._plan = planned
        order = ">" if endian == "big" else "<"
        header = traceheader.header_dtype(endian)
        self._names = list(header.names or ())
        self._getter = operator.itemgetter(*self._names)
        sample = np.dtype(order + _STORED[planned.format_code])
        self._record = np.dtype([("h", header), ("s", sample, (planned.n_samples,))])
        self._buffer: np.ndarray | None = None
        self._first = np.cumsum([0, *(b.n_traces for b in layout.blocks)]).tolist()
        self._fixed = {
            "TRACE_SAMPLE_COUNT": planned.n_samples,
            "TRACE_SAMPLE_INTERVAL": planned.interval_us,
        }
        # The words that replace the input's: start time per trace, then sample count and
        # interval, as column indices and (traces, words) values.
        self._timing_names = list(planned.timing[0]) if planned.timing else []
        if any(list(t) != self._timing_names for t in planned.timing):
            self._timing_names = []  # not one shape: the per-trace path below
        self._timing = np.array(
            [[t[n] for n in self._timing_names] for t in planned.timing], np.int64
        ).reshape(len(planned.timing), len(self._timing_names))
        column = {n: j for j, n in enumerate(self._names)}
        self._timing_columns = [column[n] for n in self._timing_names]
        self._fixed_columns = [column[n] for n in self._fixed]
        self._fixed_values = np.array(list(self._fixed.values()), np.int64)
        info = [np.iinfo(header[n]) for n in self._names]
        self._lo = np.array([i.min for i in info], np.int64)
        self._hi = np.array([i.max for i in info], np.int64)
        out.write(head)

    def _write(self, block_index: int, start: int, data: np.ndarray) -> None:
        if self._plan.format_code == 2:
            check_int32(data, self.layout, NAME)
        records = self._records(len(data))
        block = self.layout.blocks[block_index]
        first = self._first[block_index] + start
        metas = block.traces[start : start + len(data)]
        words = self._header_words(metas, first)
        if words is None:
            self._fill_headers(records, metas, first)
        else:
            headers = records["h"]
            for name, column in zip(self._names, words.T, strict=True):
                headers[name] = column
        records["s"] = data
        self._out.write(records.view(np.uint8).data)

    def _records(self, n: int) -> np.ndarray:
        """``n`` records with zeroed headers (their samples are about to be overwritten), in
        memory kept between calls."""
        if self._buffer is None or len(self._buffer) < n:
            self._buffer = np.zeros(n, self._record)
        records = self._buffer[:n]
        records.view(np.uint8).reshape(n, -1)[:, : traceheader.HEADER_BYTES] = 0
        return records

    def _header_words(self, metas: list[TraceMeta], first: int) -> np.ndarray | None:
        """The trace header words of these traces as (traces, words) int64, or None when a
        value is not a plain integer in its word's range (the per-trace path handles it)."""
        if self._plan.timing and not self._timing_names:
            return None
        words = _table_words(metas, self._names)
        if words is None:
            getter = self._getter
            try:
                values = [getter(m.headers) for m in metas]
            except KeyError:  # headers without some words: those are 0
                names = self._names
                values = [tuple(m.headers.get(n, 0) for n in names) for m in metas]
            try:
                words = np.array(values)
            except (OverflowError, ValueError, TypeError):
                return None
        if words.dtype.kind not in "iu" or words.shape != (len(metas), len(self._names)):
            return None
        words = words.astype(np.int64, copy=False)
        if self._timing_columns:
            words[:, self._timing_columns] = self._timing[first : first + len(metas)]
        words[:, self._fixed_columns] = self._fixed_values
        if len(words) and ((words.min(axis=0) < self._lo) | (words.max(axis=0) > self._hi)).any():
            return None
        return words

    def _fill_headers(self, records: np.ndarray, metas: list[TraceMeta], first: int) -> None:
        """One trace at a time (numpy's checks and conversions of each value)."""
        for i, meta in enumerate(metas):
            fields = {**meta.headers, **self._plan.timing[first + i], **self._fixed}
            records["h"][i] = tuple(fields.get(n, 0) for n in self._names)

    def _finish(self) -> None:
        """Nothing follows the last trace record."""


def _table_words(metas: list[TraceMeta], names: list[str]) -> np.ndarray | None:
    """The words of traces whose headers are all untouched rows of one header table, as a
    (traces, names) int64 copy; None otherwise (the per-trace path then reads them)."""
    first = metas[0].headers if metas else None
    if type(first) is not traceheader.HeaderRow:
        return None
    table = first.table
    rows = []
    for m in metas:
        h = m.headers
        if type(h) is not traceheader.HeaderRow or h.table is not table or not h.plain:
            return None
        rows.append(h.index)
    return table.select(np.asarray(rows, np.int64), names)


def file_header_bytes(
    planned: Plan, n_traces: int, *, endian: str, textual: list[bytes], binary: dict[str, int]
) -> bytes:
    """Textual + binary headers of a written SEG-Y, made by segyio in a header-only file.

    segyio supplies the ASCII to EBCDIC table and its defaults (a dated textual header when
    there is none, trace counts); the input's binary words are kept except the unassigned ones
    (segyio cannot write them) and those describing the new samples.
    """
    import segyio

    spec = segyio.spec()
    spec.format = planned.format_code
    spec.samples = list(range(planned.n_samples))
    spec.tracecount = n_traces
    spec.endian = endian
    spec.ext_headers = max(len(textual) - 1, 0)
    fields = {str(f): int(f) for f in segyio.BinField.enums()}
    words = {
        fields[k]: v for k, v in binary.items() if k in fields and not k.startswith("Unassigned")
    }
    words.update(
        {
            fields["Interval"]: planned.interval_us,
            fields["Samples"]: planned.n_samples,
            fields["Format"]: planned.format_code,
            fields["ExtSamples"]: 0,
            fields["ExtendedHeaders"]: spec.ext_headers,
        }
    )
    with tempfile.TemporaryDirectory(prefix="ccs-segy-") as tmp:
        path = os.path.join(tmp, "head.segy")
        with segyio.create(path, spec) as f:  # no traces written: the file is the headers
            for i, text in enumerate(textual):
                f.text[i] = text
            f.bin.update(words)
        with open(path, "rb") as src:
            return src.read()


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
