"""CCSW: this project's own lossless container for decimated files that miniSEED cannot carry.

The decimated file goes back to the input's own format where that is lossless, and to
miniSEED 2 otherwise (:func:`shared_code.formats.output_format_for`). miniSEED 2 cannot carry
every input exactly: its codes are at most 2/5/2/3 ASCII characters (a WIN channel ``a100``,
a CSS station ``TESTbe``, a KNET or DMX network do not fit), code-less traces keep their index
only up to 99999 (as a station code), and ObsPy reads traces of one id back as one when they
abut in time, so one id may appear only once per file. Where it cannot, the decimated file is
CCSW: the layout as JSON, then the samples. Convert reads it like any other format.

File layout (all integers little-endian)::

    bytes 0-7     magic  89 'C' 'C' 'S' 'W' 0D 0A 1A  (a high-bit byte and CR LF: a file
                  mangled by a text-mode or 7-bit transfer no longer matches)
    bytes 8-11    format version, uint32 (1)
    bytes 12-19   header length H in bytes, uint64
    bytes 20-     header: UTF-8 JSON, H bytes
    then          the header-word tables of the blocks that have one, in block order:
                  traces × words, row-major, int64
    then          each block's samples, in block order: traces × samples, row-major,
                  int32 ("<i4") or float32 ("<f4"); nothing after them

The JSON header::

    {"input_format": "WIN",                 the format the decimated data came from
     "blocks": [{"sampling_rate": 100.0,    Hz, a JSON number: Python writes the shortest
                                            repr, read back as the same float
                 "starttime_ns": 1267581600000000000,  first sample, ns since 1970 UTC
                 "n_samples": 6000, "dtype": "<i4",
                 "index": [0, 1],                      each trace's index in the input file
                 "network": ["", ""], "station": ["", ""], "location": ["", ""],
                 "channel": ["a100", "a101"],          codes as the input had them
                 "headers": [{...}, {...}]}]}          each trace's format header words

Codes are any strings (ids may repeat within a file); header values are what JSON holds
(numbers, strings, booleans, null, lists, objects; non-finite floats as Python's ``json``
writes them, ``NaN``/``Infinity``). SEG-Y and SU header words (some 90 integers per trace,
thousands of traces) would make a JSON header of hundreds of MB; a block whose traces are
plain rows of one :class:`~shared_code.formats.traceheader.HeaderTable` has
``"header_words": [names]`` instead of ``"headers"``, and its words follow the JSON as an
int64 table (100 001 traces: a 1.8 MB header written in 0.4 s, against 194 MB in 9.6 s as
JSON objects). Integer samples are int32 and float samples float32, as in miniSEED (the
decimator's output types).

Reading is streamed like SEG-Y (:class:`shared_code.formats.segy.TraceFile`): ``pread`` at
computed offsets straight into the arrays asked for, so memory is those arrays plus, for
column windows, a buffer of at most :data:`~shared_code.formats.streaming.CHUNK_BYTES`.
The writer appends rows as they come.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared_code.formats.errors import FormatError
from shared_code.formats.streaming import (
    CHUNK_BYTES,
    BlockLayout,
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
from shared_code.formats.traceheader import HeaderRow, HeaderTable
from shared_code.waveforms import Recording, TraceMeta

NAME = "CCSW"
EXTENSION = "ccsw"
MAGIC = b"\x89CCSW\r\n\x1a"
VERSION = 1
_PREFIX = struct.Struct("<8sIQ")
#: Stored sample types by kind: integers as int32, floats as float32.
_STORED = {"i": np.dtype("<i4"), "u": np.dtype("<i4"), "f": np.dtype("<f4")}
_CODES = ("network", "station", "location", "channel")


def is_ccsw(path: Path) -> bool:
    """True if the file starts with the CCSW magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


# --- writing --------------------------------------------------------------------------------


def can_write_layout(layout: Layout) -> bool:
    """True if CCSW carries this layout: numeric samples at a positive rate. Integers must fit
    int32 (the writer checks each row) and header words must be JSON (checked when the writer
    starts: a FormatError names the file)."""
    return all(
        b.dtype.kind in _STORED and math.isfinite(b.sampling_rate) and b.sampling_rate > 0
        for b in layout.blocks
    )


def can_write(recording: Recording) -> bool:
    """True if CCSW carries the recording without loss (numeric, int32-range integers)."""
    return can_write_layout(layout_of(recording)) and all(
        fits_int32(b.data) for b in recording.blocks
    )


def _json_value(value: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays, header mappings; others refused."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a header value of type {type(value).__name__} is not JSON")


def _word_table(traces: list[TraceMeta]) -> tuple[HeaderTable, np.ndarray] | None:
    """The SEG-Y/SU header table all of a block's traces are rows of, and their row numbers;
    None if any trace's headers are something else (then they are written as JSON)."""
    first = traces[0].headers if traces else None
    if not isinstance(first, HeaderRow):
        return None
    rows = []
    for trace in traces:
        row = trace.headers
        if not (isinstance(row, HeaderRow) and row.table is first.table and row.plain):
            return None
        rows.append(row.index)
    return first.table, np.asarray(rows, np.int64)


def _header(layout: Layout) -> tuple[bytes, list[np.ndarray]]:
    """The JSON header of a layout and its blocks' header-word tables (int64 matrices); a
    FormatError if the layout has no CCSW form."""
    blocks, tables = [], []
    for block in layout.blocks:
        stored = _STORED.get(block.dtype.kind)
        if stored is None:
            raise FormatError(layout.source, f"cannot write {NAME}: samples of type {block.dtype}")
        if not (math.isfinite(block.sampling_rate) and block.sampling_rate > 0):
            raise FormatError(
                layout.source, f"cannot write {NAME}: sampling rate {block.sampling_rate} Hz"
            )
        entry: dict[str, Any] = {
            "sampling_rate": float(block.sampling_rate),
            "starttime_ns": int(block.starttime_ns),
            "n_samples": int(block.n_samples),
            "dtype": stored.str,
            "index": [int(t.index) for t in block.traces],
        }
        for code in _CODES:
            entry[code] = [str(getattr(t, code)) for t in block.traces]
        words = _word_table(block.traces)
        if words is None:
            entry["headers"] = [t.headers for t in block.traces]
        else:
            table, rows = words
            entry["header_words"] = list(table.names)
            tables.append(table.words[rows])
        blocks.append(entry)
    try:
        text = json.dumps(
            {"input_format": layout.format_source, "blocks": blocks},
            default=_json_value,
            ensure_ascii=False,
            separators=(",", ":"),
        )
    except (TypeError, ValueError) as exc:
        raise FormatError(layout.source, f"cannot write {NAME}: {exc}") from exc
    # A code that is not valid UTF-8 (a lone surrogate from a decoder's escape) is refused.
    try:
        return text.encode("utf-8"), tables
    except UnicodeEncodeError as exc:
        raise FormatError(layout.source, f"cannot write {NAME}: {exc}") from exc


class ContainerWriter(Writer):
    """Writes the prefix, the JSON header and the header-word tables at once, then each
    call's rows as they come."""

    def __init__(self, layout: Layout, out: BinaryIO) -> None:
        header, tables = _header(layout)
        super().__init__(layout, out)
        self._stored = [_STORED[b.dtype.kind] for b in layout.blocks]
        out.write(_PREFIX.pack(MAGIC, VERSION, len(header)) + header)
        for words in tables:
            step = max(1, CHUNK_BYTES // max(1, words.shape[1] * 8))
            for r0 in range(0, len(words), step):
                out.write(np.ascontiguousarray(words[r0 : r0 + step], dtype="<i8").data)

    def _write(self, block_index: int, start: int, data: np.ndarray) -> None:
        stored = self._stored[block_index]
        if (data.dtype.kind == "f") != (stored.kind == "f"):
            # A cast between int32 and float32 could round or truncate: never silently.
            raise FormatError(
                self.layout.source,
                f"cannot write {NAME}: {data.dtype} rows for a block of {stored} samples",
            )
        check_int32(data, self.layout, NAME)
        self._out.write(np.ascontiguousarray(data, dtype=stored).data)

    def _finish(self) -> None:
        """Nothing follows the last block's samples."""


def writer(layout: Layout, out: BinaryIO) -> ContainerWriter:
    """A streaming CCSW writer for this layout, into an open binary file."""
    return ContainerWriter(layout, out)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as CCSW to an open binary file."""
    write_whole(recording, writer(layout_of(recording), out))


# --- reading --------------------------------------------------------------------------------


class _File:
    """The open descriptor all blocks of a file read from (``pread``: no shared position)."""

    def __init__(self, path: Path, name: str) -> None:
        self.name = name
        self.fd = os.open(path, os.O_RDONLY)

    def read_into(self, out: np.ndarray, offset: int) -> None:
        """Fill a C-contiguous array with the bytes at ``offset``."""
        if not out.flags.c_contiguous:  # reshape would copy: the bytes would land elsewhere
            raise ValueError("read_into needs a C-contiguous array")
        if out.size:
            read_exact(self.fd, out.reshape(-1).view(np.uint8).data, offset, self.name)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ContainerBlock(BlockSource):
    """One block of a CCSW file: rows at ``offset`` + row × row bytes, read on request."""

    def __init__(self, file: _File, layout: BlockLayout, stored: np.dtype, offset: int) -> None:
        super().__init__(
            layout.traces, layout.sampling_rate, layout.starttime_ns, layout.n_samples,
            stored.newbyteorder("="),
        )  # fmt: skip
        self._file = file
        self._stored = stored
        self._offset = offset
        self._row_bytes = layout.n_samples * stored.itemsize

    def rows(self, start: int, stop: int) -> np.ndarray:
        return self._native(self.stored_rows(start, stop))

    def columns(self, start: int, stop: int) -> np.ndarray:
        start, stop, _ = slice(start, stop).indices(self.n_samples)
        width = max(0, stop - start)
        out = np.empty((self.n_traces, width), self._stored)
        if out.size == 0:
            return self._native(out)
        size = self._stored.itemsize
        if 2 * width * size < self._row_bytes:
            # A narrow window (e.g. seam edges): one read per trace, straight into its row.
            for i in range(self.n_traces):
                self._file.read_into(out[i], self._offset + i * self._row_bytes + start * size)
            return self._native(out)
        # Most of each row: whole rows a chunk at a time, the window copied out.
        per = max(1, CHUNK_BYTES // self._row_bytes)
        buffer = np.empty((min(per, self.n_traces), self.n_samples), self._stored)
        for r0 in range(0, self.n_traces, per):
            chunk = buffer[: min(per, self.n_traces - r0)]
            self._file.read_into(chunk, self._offset + r0 * self._row_bytes)
            out[r0 : r0 + len(chunk)] = chunk[:, start:stop]
        return self._native(out)

    def stored_rows(self, start: int, stop: int) -> np.ndarray:
        # Stored little-endian: only a big-endian machine has a conversion to save.
        start, stop, _ = slice(start, stop).indices(self.n_traces)
        out = np.empty((max(0, stop - start), self.n_samples), self._stored)
        self._file.read_into(out, self._offset + start * self._row_bytes)
        return out

    def _native(self, stored: np.ndarray) -> np.ndarray:
        return stored.astype(self.dtype, copy=False)


class ContainerSource(Source):
    """A CCSW file open for reading by blocks."""

    def __init__(self, path: Path, name: str) -> None:
        self.format = NAME
        self.source = name
        self._file = _File(path, name)
        try:
            input_format, layouts, offset = _read_header(self._file, name)
            self.file_headers = {"input_format": input_format}
            self.blocks = []
            for layout, names in layouts:
                if names is not None:
                    offset = _read_word_table(self._file, layout, names, offset)
            for layout, _names in layouts:
                stored = _STORED[np.dtype(layout.dtype).kind]
                self.blocks.append(ContainerBlock(self._file, layout, stored, offset))
                offset += layout.n_traces * layout.n_samples * stored.itemsize
            size = os.fstat(self._file.fd).st_size
            if size != offset:
                state = "truncated" if size < offset else "data after the last block"
                raise FormatError(
                    name, f"{NAME} file is {size} bytes, its header describes {offset} ({state})"
                )
        except BaseException:
            self._file.close()
            raise

    def close(self) -> None:
        self._file.close()


def open_source(path: Path, name: str) -> ContainerSource:
    """Open a CCSW file for reading by blocks; ``name`` is the display name used in errors."""
    return ContainerSource(path, name)


def read(path: Path, name: str) -> Recording:
    """Read a CCSW file whole; ``name`` is the display name used in errors."""
    with open_source(path, name) as source:
        return source.recording()


def _read_header(
    file: _File, name: str
) -> tuple[str, list[tuple[BlockLayout, list[str] | None]], int]:
    """The input format; each block's layout and header-word names (None: its headers were
    in the JSON); the byte offset where the header ends."""
    prefix = np.empty(_PREFIX.size, np.uint8)
    file.read_into(prefix, 0)
    magic, version, length = _PREFIX.unpack(prefix.tobytes())
    if magic != MAGIC:
        raise FormatError(name, f"not a {NAME} file (magic bytes {magic!r})")
    if version != VERSION:
        raise FormatError(name, f"{NAME} version {version} is not supported (only {VERSION})")
    size = os.fstat(file.fd).st_size
    if length > size - _PREFIX.size:
        raise FormatError(
            name, f"{NAME} header of {length} bytes does not fit the {size}-byte file (truncated?)"
        )
    raw = np.empty(length, np.uint8)
    file.read_into(raw, _PREFIX.size)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
        input_format = header["input_format"]
        if not isinstance(input_format, str):
            raise TypeError("input_format is not a string")
        blocks = [_block_layout(b) for b in header["blocks"]]
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise FormatError(name, f"corrupt {NAME} header: {reason}") from exc
    return input_format, blocks, _PREFIX.size + length


def _read_word_table(file: _File, layout: BlockLayout, names: list[str], offset: int) -> int:
    """Read a block's header-word table at ``offset`` into its traces' headers (views of one
    int64 matrix, as the SEG-Y reader gives); returns the offset after it."""
    words = np.empty((layout.n_traces, len(names)), "<i8")
    if offset + words.nbytes > os.fstat(file.fd).st_size:
        raise FormatError(file.name, f"{NAME} file ends inside a header-word table (truncated?)")
    file.read_into(words, offset)
    table = HeaderTable(tuple(names), words.astype(np.int64, copy=False))
    for meta, row in zip(layout.traces, table.rows(), strict=True):
        meta.headers = row
    return offset + words.nbytes


def _block_layout(entry: dict[str, Any]) -> tuple[BlockLayout, list[str] | None]:
    """One block of the header, checked: the values a reader computes offsets from."""
    rate, start, n_samples, dtype = (
        entry["sampling_rate"], entry["starttime_ns"], entry["n_samples"], entry["dtype"],
    )  # fmt: skip
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"sampling rate {rate!r}")
    if not (type(start) is int and type(n_samples) is int and n_samples >= 0):  # no bools
        raise ValueError(f"start {start!r} ns or sample count {n_samples!r}")
    if dtype not in {d.str for d in _STORED.values()}:
        raise ValueError(f"sample type {dtype!r}")
    names = entry.get("header_words")
    if names is not None and not (
        isinstance(names, list) and all(isinstance(n, str) for n in names)
    ):
        raise ValueError("header_words is not a list of names")
    headers = entry["headers"] if names is None else [{} for _ in entry["index"]]
    columns = [entry["index"], *(entry[c] for c in _CODES), headers]
    if len({len(c) for c in columns}) != 1:
        raise ValueError("trace columns of different lengths")
    index, network, station, location, channel, headers = columns
    if not all(type(i) is int for i in index):
        raise ValueError("a trace index is not an integer")
    if not all(isinstance(c, str) for code in (network, station, location, channel) for c in code):
        raise ValueError("a code is not a string")
    if not all(isinstance(h, dict) for h in headers):
        raise ValueError("trace headers are not objects")
    rows = zip(index, network, station, location, channel, headers, strict=True)
    traces = [TraceMeta(i, n, s, loc, c, h) for i, n, s, loc, c, h in rows]
    return BlockLayout(traces, float(rate), start, n_samples, np.dtype(dtype)), names
