"""Writing SEG-Y and SU: the plan (does the layout fit without loss?) and the trace writer.

Written files keep the input's textual header, binary header and trace header words, with the
new sample count, interval (µs), sample format and start times. Sample formats written: 2
(int32) for integers, 5 (IEEE float32) for float32, 6 (IEEE float64) when a block is float64
(a float64 input passed through at its own rate: nothing is rounded); SU holds float32 only.
The file headers are made by segyio (its EBCDIC table and defaults); trace records are
encoded here as rows arrive (:class:`TraceWriter`), so writing needs no more memory than the
rows of one call.
"""

from __future__ import annotations

import operator
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import numpy as np

from shared_code.formats import traceheader
from shared_code.formats.segy_headers import EXTENSIONS_KEY
from shared_code.formats.segy_samples import stored_dtype
from shared_code.formats.streaming import Layout, Writer, check_int32, fits_int32, layout_of
from shared_code.waveforms import Recording, TraceMeta

#: Largest sample count and interval (µs) written: both int16 for rev 0/1 readers (ObsPy reads
#: the sample count as signed).
MAX_HEADER_WORD = 32767


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
    (written IEEE float32, or float64 when a block is float64; ``floats_only`` for SU, which
    has float32 only); every start time exact to the µs in the trace header; no SEED codes
    (SEG-Y has no place for them);
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
    wide = any(b.dtype.kind == "f" and b.dtype.itemsize > 4 for b in blocks)
    if wide and floats_only:
        return "float64 samples do not fit SU's float32 without loss"
    if kinds & {"f"} and any(b.dtype.kind == "f" and b.dtype.itemsize > 8 for b in blocks):
        return "samples wider than float64 cannot be written without loss"
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
    code = (6 if wide else 5) if "f" in kinds else 2
    return Plan(int(interval), n_samples, code, timing)


def plan(recording: Recording, floats_only: bool = False) -> Plan | str:
    """:func:`plan_layout` of a recording, its integer samples checked against int32 too."""
    if not all(fits_int32(b.data) for b in recording.blocks):
        return "integer samples exceed the int32 range"
    return plan_layout(layout_of(recording), floats_only)


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
        header = traceheader.header_dtype(endian)
        self._names = list(header.names or ())
        self._getter = operator.itemgetter(*self._names)
        sample = stored_dtype(planned.format_code, endian)
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
            check_int32(data, self.layout, "SEGY")
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
