"""MiniSEED: miniSEED 2 read through ObsPy (any record length), miniSEED 3 (which ObsPy 1.5
cannot read) through pymseed (libmseed 3), CRC-checked; written by pymseed, 512-byte records,
in miniSEED 2 (``formatversion = 2``: pymseed's default is miniSEED 3, which ObsPy cannot
read).

Read: as ObsPy and libmseed read a file, what is not a data record is skipped: a full SEED
volume's control headers (a dataless volume before the data), noise records before or
between the records, records that hold no samples (data offset 0). Traces of text (ASCII
log records, e.g. an RT130's ``LOG`` channel) and traces without samples are left out of the
recording (and logged); a file with nothing else is refused.

Written samples: integers as int32 with Steim-2 compression, or plain INT32 for a trace whose
sample-to-sample differences exceed Steim-2's 30 bits; floats as FLOAT32. Traces without SEED
codes (from SEG-Y, SU, SEG-2) are written with their 0-based trace index as the station code
and the other codes empty, and read back as code-less traces with that index, so the index
survives channel selection.

Non-finite samples (NaN, +Inf, -Inf) never reach the MiniSEED that SeedLink streams: each
finite run of a float trace is written as its own segment (first record at that run's first
sample time on the trace's grid, µs-rounded; record sequence numbers run on through the
trace's segments), so each stretch of non-finite samples is a gap; a trace with no finite
sample writes nothing. The writer counts them (``nonfinite_samples``, ``gaps``: the convert
stage's report and its ``NonfiniteSamples`` metric) and logs one warning per file naming the
first :data:`MAX_LOGGED_GAPS` stretches (SEED id, start and end time), then how many more.
Only the decimated file, which convert reads back, keeps them (:func:`intermediate_writer`):
there a gap would split one trace into several on read-back.

Where the non-finite samples come from: a float input with NaN or Inf. The decimation filter
spreads one bad input sample over the outputs whose support (``plan.support``, half-width,
e.g. 0.374 s for 1000 -> 100 Hz, 0.68 s for 200 -> 50 Hz) reaches it, and a little beyond:
the FIR runs as matrix products over rows of S input samples (S = 80 and 34 for the stages
of 1000 -> 100 Hz), and 0 × NaN is NaN, so the gap may widen by up to S - 1 input samples of
each stage on each side, less than one composite support (measured: 0.11 s and 0.16 s for
1000 -> 100 Hz). An Inf input comes out NaN (taps of both signs). The gap in the MiniSEED
therefore starts up to twice the support before the first bad input sample and ends up to
twice the support after the last.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from shared_code.formats import obspy_bridge
from shared_code.formats.errors import FormatError
from shared_code.formats.grouping import Trace, group_traces
from shared_code.formats.mseed_detect import is_mseed
from shared_code.formats.streaming import (
    BlockLayout,
    Layout,
    Writer,
    check_int32,
    fits_int32,
    layout_of,
    write_whole,
)
from shared_code.waveforms import NS_PER_S, Recording, TraceMeta, exact_rate

log = logging.getLogger(__name__)

__all__ = ["MseedWriter", "intermediate_writer", "is_mseed", "read", "write", "writer"]

NAME = "MSEED"
EXTENSION = "mseed"
RECORD_LENGTH = 512
#: Steim-2 stores differences in at most 30 bits (two's complement).
STEIM2_MAX_DIFF = 2**29
_MAX_INDEX = 99_999
#: Record sequence numbers run 1..999999, then start again at 1.
_MAX_SEQUENCE = 999_999
#: Records written at a time (bytes of samples per batch of rows), bounding the writer's memory.
WRITE_BYTES = 4 << 20
#: Stretches of non-finite samples described one by one in the writer's log line; then a count.
MAX_LOGGED_GAPS = 5
#: The source id records are packed under; the SEED code bytes are set afterwards.
_PLACEHOLDER_ID = "FDSN:XX_STA__X_X_X"


def read(path: Path, name: str) -> Recording:
    """Read a miniSEED 2 (ObsPy) or miniSEED 3 (pymseed) file; traces grouped into blocks by
    start, rate and length.

    What libmseed reads but is not a waveform is left out (and logged): traces of text
    (ASCII-encoded log records), traces without samples (records with no data, e.g. data
    offset 0) and traces with a sampling rate of 0 (no time base: state-of-health channels).
    A file with nothing else is refused.
    """
    with open(path, "rb") as fh:
        if fh.read(3) == b"MS\x03":
            return _read_ms3(path, name)
    stream = obspy_bridge.read_stream(path, name, NAME)
    waveforms = []
    text = timeless = empty = 0
    for tr in stream:
        if tr.data.dtype.kind not in "iuf":
            text += 1
        elif not tr.stats.sampling_rate > 0:
            timeless += 1
        elif not len(tr.data):
            empty += 1
        else:
            waveforms.append(tr)
    if len(waveforms) < len(stream):
        _skipped(name, len(stream), text, empty, bool(waveforms), timeless=timeless)
        stream.traces = waveforms
    recording = obspy_bridge.stream_to_recording(stream, NAME, name, None)
    for block in recording.blocks:
        block.traces = [_restore_index(meta) for meta in block.traces]
    return recording


def _skipped(
    name: str, total: int, text: int, empty: int, any_left: bool, *, timeless: int = 0
) -> None:
    """Log the traces left out of a read; refuse a file with no waveform left."""
    log.info(
        "%s: skipped %d text (ASCII log), %d empty and %d 0 Hz miniSEED traces of %d",
        name, text, empty, timeless, total,
    )  # fmt: skip
    if not any_left:
        zero = f", {timeless} with a sampling rate of 0 Hz" if timeless else ""
        raise FormatError(
            name,
            f"no waveform data: {text} text (ASCII log) and {empty} empty traces{zero} only",
        )


def _read_ms3(path: Path, name: str) -> Recording:
    """A miniSEED 3 file through libmseed 3 (pymseed), each record's CRC checked.

    libmseed joins a source id's contiguous records into segments (as libmseed 2 does for
    ObsPy); each segment is a trace, in the order of their source ids, then time. FDSN source
    ids become SEED codes with ``sourceid2nslc`` (``FDSN:XX_STA_00_H_H_Z`` is ``XX.STA.00.HHZ``;
    extended codes, e.g. a 3-letter network, stay as they are); start times keep their ns.
    """
    from pymseed import MS3TraceList, sourceid2nslc

    try:
        tracelist = MS3TraceList.from_file(path, unpack_data=True)
    except Exception as exc:  # libmseed's errors: bad CRC, truncated record, ...
        raise FormatError(name, f"unreadable miniSEED 3 file: {type(exc).__name__}: {exc}") from exc
    traces: list[Trace] = []
    total = text = 0
    for traceid in tracelist:
        network, station, location, channel = sourceid2nslc(traceid.sourceid)
        for segment in traceid:
            total += 1
            if segment.sampletype not in ("i", "f", "d"):
                text += 1
                continue
            data = segment.take_np_datasamples()
            if len(data):
                meta = TraceMeta(len(traces), network, station, location, channel)
                traces.append(Trace(data, float(segment.samprate), int(segment.starttime), meta))
    if len(traces) < total:
        _skipped(name, total, text, total - len(traces) - text, bool(traces))
    return Recording(NAME, group_traces(traces), source=name)


def _restore_index(meta: TraceMeta) -> TraceMeta:
    if meta.station.isdigit() and not (meta.network or meta.location or meta.channel):
        return TraceMeta(index=int(meta.station), headers=meta.headers)
    return meta


def _cast_dtype(data: np.ndarray) -> np.dtype:
    """Written sample type: float32 for floats, int32 for integers (native byte order)."""
    return np.dtype(np.float32 if data.dtype.kind == "f" else np.int32)


def layout_problem(layout: Layout) -> str | None:
    """Why traces of this layout cannot be written as miniSEED, or None.

    Integer samples must also fit int32: the writer checks that per row (values are not
    part of a layout).
    """
    for block in layout.blocks:
        if block.dtype.kind not in "iuf":
            return f"sample type {block.dtype} is not numeric"
        for meta in block.traces:
            codeless = not (meta.network or meta.station or meta.location or meta.channel)
            if codeless and meta.index > _MAX_INDEX:
                return f"trace index {meta.index} does not fit a 5-character station code"
            if len(meta.network) > 2 or len(meta.station) > 5 or len(meta.location) > 2:
                return f"trace {meta.index}: SEED codes too long for miniSEED"
            if len(meta.channel) > 3:
                return f"trace {meta.index}: channel code {meta.channel!r} too long"
            if not (meta.network + meta.station + meta.location + meta.channel).isascii():
                return f"trace {meta.index}: SEED codes are not ASCII"
    return None


def readback_problem(layout: Layout) -> str | None:
    """Why a miniSEED file of this layout would not read back as the same traces, or None.

    What the decimated file needs (convert reads it back trace by trace), not the final
    MiniSEED, whose segments of one channel share their id on purpose. ObsPy strips the
    codes' spaces, reads a lone numeric station code as a code-less trace's index, and joins
    traces of one id that abut in time, so each id may occur once per file.
    """
    problem = layout_problem(layout)
    if problem:
        return problem
    seen: set[tuple[str, ...]] = set()
    for block in layout.blocks:
        for meta in block.traces:
            codes = (meta.network, meta.station, meta.location, meta.channel)
            codeless = not any(codes)
            if any(c != c.strip() or not c.isprintable() for c in codes):
                return f"trace {meta.index}: SEED codes {codes}: end spaces or control characters"
            if not codeless and meta.station.isdigit() and codes.count("") == 3:
                return f"trace {meta.index}: station {meta.station!r} reads back as an index"
            key = ("", str(meta.index), "", "") if codeless else codes
            if key in seen:
                return f"trace {meta.index}: id {'.'.join(key)!r} occurs twice in the file"
            seen.add(key)
    return None


def can_write(recording: Recording) -> bool:
    """True if the recording fits miniSEED 2 and reads back as the same traces (int32-range
    or float samples, SEED code lengths, ids; see :func:`readback_problem`)."""
    layout = layout_of(recording)
    return readback_problem(layout) is None and all(fits_int32(b.data) for b in recording.blocks)


def can_write_layout(layout: Layout) -> bool:
    """True if traces of this layout fit miniSEED 2 and read back as the same traces."""
    return readback_problem(layout) is None


def encoding_for(data: np.ndarray) -> str:
    """miniSEED encoding of one trace's samples: STEIM2, INT32 (Steim-2 overflow) or FLOAT32."""
    if data.dtype.kind == "f":
        return "FLOAT32"
    return "STEIM2" if bool(steim2_fits(data.reshape(1, -1))[0]) else "INT32"


def steim2_fits(rows: np.ndarray) -> np.ndarray:
    """Per row of integer samples: True if every sample-to-sample difference fits Steim-2.

    libmseed packs a difference ``d`` only if ``-2**29 < d < 2**29``. A row whose range
    (max - min) is below ``2**29`` cannot hold a larger difference; only the other rows'
    differences are computed.
    """
    out = np.ones(len(rows), dtype=bool)
    if rows.shape[1] < 2:
        return out
    spread = rows.max(axis=1).astype(np.int64) - rows.min(axis=1).astype(np.int64)
    for i in np.flatnonzero(spread >= STEIM2_MAX_DIFF):
        diffs = np.diff(rows[i].astype(np.int64))
        out[i] = bool(np.abs(diffs).max() < STEIM2_MAX_DIFF)
    return out


def _code_bytes(meta: TraceMeta) -> bytes:
    """Fixed-header bytes 9-20 of a trace's records: station, location, channel, network.

    ASCII, left-justified and space-padded, as libmseed 2 (ObsPy's writer) puts them; a trace
    without SEED codes gets its index as the station code.
    """
    station = meta.station
    if not (meta.network or meta.station or meta.location or meta.channel):
        station = str(meta.index)
    return (
        station.encode("ascii").ljust(5)
        + meta.location.encode("ascii").ljust(2)
        + meta.channel.encode("ascii").ljust(3)
        + meta.network.encode("ascii").ljust(2)
    )


def _sequence_digits(counts: np.ndarray) -> np.ndarray:
    """ASCII sequence numbers (n records, 6) of each trace's records: 1, 2, ... per trace,
    999999 followed by 1, as ObsPy numbers them."""
    total = int(counts.sum())
    first = np.repeat(np.cumsum(counts) - counts, counts)
    seq = (np.arange(total, dtype=np.int64) - first) % _MAX_SEQUENCE + 1
    powers = 10 ** np.arange(5, -1, -1, dtype=np.int64)
    return (seq[:, None] // powers % 10 + ord("0")).astype(np.uint8)


class MseedWriter(Writer):
    """Appends each call's rows (one row = one trace) as 512-byte miniSEED 2 records.

    The records are packed by libmseed 3 (pymseed) with ``formatversion = 2``; the start
    time is first rounded to the µs as ObsPy's writer does. libmseed 3 identifies a trace by
    an FDSN source id, which has no form for channel codes other than 3 characters (nor for
    the code-less traces), so records are packed under one placeholder id and each record's
    SEED code bytes and sequence number (1, 2, ... per trace, as ObsPy) are then set in a
    buffer of many traces' records, written at once (:data:`WRITE_BYTES` at a time). Against
    ObsPy's writer the records differ only in the order of blockettes 1000 and 1001 and in
    the unused first Steim-2 difference of a record after the first (libmseed 3 writes 0), so
    a Steim-2 trace may split into records at other samples; ObsPy reads the same samples,
    ids and times from both.

    FLOAT32 records hold a fixed number of samples, so the records of all rows of a block
    share their headers (codes and sequence numbers apart): libmseed packs the first row of
    each batch and the other rows' records are that row's with their own samples (checked
    against libmseed's on the packed row).
    """

    def __init__(self, layout: Layout, out: BinaryIO, *, keep_nonfinite: bool = False) -> None:
        problem = layout_problem(layout)
        if problem:
            raise FormatError(layout.source, f"cannot write miniSEED: {problem}")
        super().__init__(layout, out)
        from pymseed import MS3Record

        self._codes = [
            np.frombuffer(b"".join(_code_bytes(m) for m in block.traces), np.uint8).reshape(-1, 12)
            for block in layout.blocks
        ]
        self._msr = MS3Record()
        self._msr.formatversion = 2
        self._msr.reclen = RECORD_LENGTH
        self._msr.sourceid = _PLACEHOLDER_ID
        self._gaps_for_nonfinite = not keep_nonfinite
        #: Non-finite samples left out, and the stretches (gaps) they made, so far.
        self.nonfinite_samples = 0
        self.gaps = 0
        self._stretches: list[str] = []

    def _write(self, block_index: int, start: int, data: np.ndarray) -> None:
        check_int32(data, self.layout, "miniSEED")
        if data.shape[1] == 0:
            return  # ObsPy skips empty traces: no record
        block = self.layout.blocks[block_index]
        self._msr.starttime = obspy_bridge.round_us(block.starttime_ns)
        self._msr.samprate = block.sampling_rate
        dtype = _cast_dtype(data)
        step = max(1, WRITE_BYTES // (data.shape[1] * dtype.itemsize))
        for r0 in range(0, len(data), step):
            rows = np.ascontiguousarray(data[r0 : r0 + step], dtype=dtype)
            gaps = rows.dtype.kind == "f" and self._gaps_for_nonfinite
            finite = np.isfinite(rows) if gaps else None
            if finite is not None and not finite.all():
                buffer, counts = self._gapped_records(block, start + r0, rows, finite)
            elif rows.dtype.kind == "f":
                buffer, counts = self._float_records(rows)
            else:
                buffer, counts = self._integer_records(rows)
            table = np.frombuffer(buffer, np.uint8).reshape(-1, RECORD_LENGTH)
            table[:, :6] = _sequence_digits(counts)
            codes = self._codes[block_index][start + r0 : start + r0 + len(rows)]
            table[:, 8:20] = np.repeat(codes, counts, axis=0)
            self._out.write(buffer)

    def _pack(self, row: np.ndarray, encoding: int) -> bytearray:
        """libmseed's records of one row (the placeholder id, the block's time and rate)."""
        self._msr.encoding = encoding
        out = bytearray()
        for record in self._msr.generate(row, "f" if row.dtype.kind == "f" else "i"):
            out += record
        return out

    def _integer_records(self, rows: np.ndarray) -> tuple[bytearray, np.ndarray]:
        """Records of int32 rows: Steim-2, or INT32 where a difference does not fit."""
        from pymseed import DataEncoding, MiniSEEDError

        buffer = bytearray()
        counts = np.empty(len(rows), np.int64)
        for i, (row, steim2) in enumerate(zip(rows, steim2_fits(rows), strict=True)):
            try:
                records = self._pack(row, DataEncoding.STEIM2 if steim2 else DataEncoding.INT32)
            except MiniSEEDError:  # not expected: steim2_fits is libmseed's own bound
                if not steim2:
                    raise
                records = self._pack(row, DataEncoding.INT32)
            buffer += records
            counts[i] = len(records) // RECORD_LENGTH
        return buffer, counts

    def _float_records(self, rows: np.ndarray) -> tuple[bytearray, np.ndarray]:
        """Records of float32 rows: the first row's records as the template of the others."""
        from pymseed import DataEncoding

        packed = self._pack(rows[0], DataEncoding.FLOAT32)
        template = np.frombuffer(packed, np.uint8).reshape(-1, RECORD_LENGTH)
        counts = np.full(len(rows), len(template), np.int64)
        records = _float_records_like(template, rows)
        if records is None or not np.array_equal(records[0], template):
            buffer = bytearray()  # not the layout expected: libmseed packs every row
            for row in rows:
                buffer += self._pack(row, DataEncoding.FLOAT32)
            return buffer, counts
        return bytearray(records.data), counts

    def _gapped_records(
        self, block: BlockLayout, first_row: int, rows: np.ndarray, finite: np.ndarray
    ) -> tuple[bytearray, np.ndarray]:
        """Records of float rows with non-finite samples: each finite run of a row is its own
        segment (libmseed packs it from its own first sample's time on the block's grid);
        sequence numbers run on through a row's segments. A row with no finite sample has no
        record."""
        from pymseed import DataEncoding

        buffer = bytearray()
        counts = np.zeros(len(rows), np.int64)
        rate = exact_rate(block.sampling_rate)
        for i, (row, ok) in enumerate(zip(rows, finite, strict=True)):
            if ok.all():
                records = self._pack(row, DataEncoding.FLOAT32)
            else:
                records = bytearray()
                good, bad = _runs(ok), _runs(~ok)
                for b0, b1 in bad:
                    self._note_stretch(block, first_row + i, rate, b0, b1)
                for g0, g1 in good:
                    offset = round(Fraction(g0) / rate * NS_PER_S)
                    self._msr.starttime = obspy_bridge.round_us(block.starttime_ns + offset)
                    records += self._pack(row[g0:g1], DataEncoding.FLOAT32)
                self._msr.starttime = obspy_bridge.round_us(block.starttime_ns)
            buffer += records
            counts[i] = len(records) // RECORD_LENGTH
        return buffer, counts

    def _note_stretch(self, block: BlockLayout, row: int, rate: Fraction, b0: int, b1: int) -> None:
        """Count one stretch of non-finite samples [b0, b1) of a row; describe the first few."""
        self.nonfinite_samples += b1 - b0
        self.gaps += 1
        if len(self._stretches) < MAX_LOGGED_GAPS:
            meta = block.traces[row]
            seed_id = f"{meta.network}.{meta.station}.{meta.location}.{meta.channel}"
            if seed_id == "...":
                seed_id = f"trace {meta.index}"
            t0, t1 = (block.starttime_ns + round(Fraction(n) / rate * NS_PER_S) for n in (b0, b1))
            self._stretches.append(f"{seed_id} {_iso(t0)} - {_iso(t1)} ({b1 - b0} samples)")

    def _finish(self) -> None:
        """Nothing follows the last trace's records; the gaps made are logged."""
        if self.gaps:
            more = self.gaps - len(self._stretches)
            log.warning(
                "%s: %d non-finite samples (NaN/Inf) in %d stretches written as gaps: %s%s",
                self.layout.source, self.nonfinite_samples, self.gaps,
                "; ".join(self._stretches), f"; and {more} more" if more else "",
            )  # fmt: skip


def _float_records_like(template: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """FLOAT32 records of ``rows`` (traces, records, 512 bytes) with ``template``'s headers,
    or None if the template is not one trace's records of fixed-size big-endian samples."""
    n_records, n_samples = len(template), rows.shape[1]
    begin = int.from_bytes(template[0, 44:46].tobytes(), "big")  # first data byte
    per = int.from_bytes(template[0, 30:32].tobytes(), "big")  # samples per record
    full, rest = divmod(n_samples, per) if per else (0, n_samples)
    if (
        not per
        or begin < 48
        or begin + 4 * per > RECORD_LENGTH
        or n_records != full + (rest > 0)
        or any(int.from_bytes(t[44:46].tobytes(), "big") != begin for t in template)
    ):
        return None
    records = np.empty((len(rows), n_records, RECORD_LENGTH), np.uint8)
    records[:] = template
    samples = rows.astype(">f4").view(np.uint8)
    width = 4 * per
    records[:, :full, begin : begin + width] = samples[:, : full * width].reshape(-1, full, width)
    if rest:
        records[:, full, begin : begin + 4 * rest] = samples[:, full * width :]
    return records


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) index ranges where a 1-D boolean mask is True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _iso(ns: int) -> str:
    """A time in ns since 1970 as ISO 8601 UTC with µs (the log's form)."""
    seconds, rest = divmod(obspy_bridge.round_us(ns), NS_PER_S)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1000:06d}Z"


def writer(layout: Layout, out: BinaryIO) -> MseedWriter:
    """A streaming miniSEED 2 writer (512-byte records) for this layout, into an open file.

    Non-finite samples become gaps (see the module docstring)."""
    return MseedWriter(layout, out)


def intermediate_writer(layout: Layout, out: BinaryIO) -> MseedWriter:
    """:func:`writer` for the decimated file, which convert reads back: non-finite samples are
    kept as they are (each trace stays one trace on read-back; convert makes the gaps)."""
    return MseedWriter(layout, out, keep_nonfinite=True)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as miniSEED 2 with 512-byte records to an open binary file."""
    if not all(fits_int32(b.data) for b in recording.blocks):
        raise FormatError(
            recording.source, "cannot write miniSEED: integer samples exceed the int32 range"
        )
    write_whole(recording, writer(layout_of(recording), out))
