"""SEG-Y rev 0/1/2: big- or little-endian, samples int16 (3), int32 (2), IBM (1) or IEEE (5) float.

The hot path for multi-thousand-trace files: samples come from segyio in one call
(``f.trace.raw[:]``, IBM float converted in C), trace headers from one numpy view over the
same bytes (segyio's per-trace header objects cost ~40 µs each). Integers stay integers (int16
or int32); floats become float32. The sample interval (µs) is the binary header's (bytes
3217-3218), the first trace header's if that is zero. Start times follow
:mod:`shared_code.formats.traceheader`. Traces are fixed-length (what segyio and rev 0/1
require); rev 2 trace header extensions and variable-length traces are refused.

Written files keep the input's textual header, binary header and trace header words, with the
new sample count, interval (µs), sample format (2 = int32, 5 = IEEE float) and start times.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from shared_code.formats import traceheader
from shared_code.formats.errors import FormatError
from shared_code.formats.grouping import blocks_by_start
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
#: Largest sample count and interval (µs) written: both int16 for rev 0/1 readers (ObsPy reads
#: the sample count as signed).
MAX_HEADER_WORD = 32767
#: Fraction of text-like bytes (ASCII or EBCDIC printable) expected in a textual header.
_TEXT_LIKE = 0.9
_TEXT_BYTES_SET = frozenset({0, 10, 13}).union(
    range(0x20, 0x7F),  # ASCII printable
    *(range(lo, lo + 10) for lo in (0x4A, 0x5A, 0x6A, 0x7A, 0x81, 0x91, 0xA1)),  # EBCDIC
    *(range(lo, lo + 10) for lo in (0xC0, 0xD0, 0xE0, 0xF0)),  # EBCDIC letters, digits
)


@dataclass(frozen=True)
class Layout:
    """What the file and binary headers say about a SEG-Y file's trace layout."""

    endian: str
    format_code: int
    n_samples: int
    interval_us: int
    ext_text_headers: int
    extra_trace_headers: int
    size: int

    @property
    def data_offset(self) -> int:
        return FILE_HEADER_BYTES + TEXT_BYTES * max(self.ext_text_headers, 0)

    @property
    def trace_bytes(self) -> int:
        return traceheader.HEADER_BYTES + self.n_samples * FORMAT_SIZES[self.format_code]


def probe(path: Path) -> Layout | None:
    """Layout of a SEG-Y file, or None if the headers do not look like SEG-Y."""
    size = os.path.getsize(path)
    if size < FILE_HEADER_BYTES:
        return None
    with open(path, "rb") as fh:
        head = fh.read(FILE_HEADER_BYTES + traceheader.HEADER_BYTES)
    for endian, order in (("big", ">"), ("little", "<")):
        code = struct.unpack_from(f"{order}H", head, 3224)[0]
        if code not in FORMAT_SIZES:
            continue
        major = head[3500]
        interval, ns = struct.unpack_from(f"{order}HxxH", head, 3216)
        if ns == 0 and major >= 2:
            ns = struct.unpack_from(f"{order}i", head, 3268)[0]
        if len(head) >= FILE_HEADER_BYTES + traceheader.HEADER_BYTES:
            trace_ns, trace_dt = struct.unpack_from(f"{order}HH", head, FILE_HEADER_BYTES + 114)
            ns = ns or trace_ns
            interval = interval or trace_dt
        if ns <= 0:
            continue
        layout = Layout(
            endian=endian,
            format_code=code,
            n_samples=ns,
            interval_us=interval,
            ext_text_headers=struct.unpack_from(f"{order}h", head, 3504)[0],
            extra_trace_headers=struct.unpack_from(f"{order}H", head, 3506)[0] if major >= 2 else 0,
            size=size,
        )
        whole = (size - layout.data_offset) % layout.trace_bytes == 0
        if whole or _looks_like_text(head[:TEXT_BYTES]):
            return layout
    return None


def _looks_like_text(block: bytes) -> bool:
    text_like = sum(1 for b in block if b in _TEXT_BYTES_SET)
    return text_like >= _TEXT_LIKE * len(block)


def is_segy(path: Path) -> bool:
    """True if the file's headers are SEG-Y's (a cheap check of the first 3840 bytes)."""
    return probe(path) is not None


def read(path: Path, name: str) -> Recording:
    """Read a SEG-Y file; ``name`` is the display name used in errors."""
    import segyio

    layout = probe(path)
    if layout is None:
        raise FormatError(name, "not a SEG-Y file")
    n_traces = check_layout(layout, name)
    with segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian) as f:
        data = f.trace.raw[:]
        textual = [bytes(f.text[i]) for i in range(1 + f.ext_headers)]
        binary = {str(k): int(v) for k, v in f.bin.items()}
    if data.shape != (n_traces, layout.n_samples):
        raise FormatError(
            name,
            f"SEG-Y headers promise {n_traces} traces of {layout.n_samples} samples, "
            f"segyio found {data.shape}",
        )
    headers = read_trace_headers(
        path, layout.endian, layout.data_offset, layout.trace_bytes, n_traces
    )
    metas = [
        TraceMeta(index=i, headers=h) for i, h in enumerate(traceheader.headers_to_dicts(headers))
    ]
    rate = 1e6 / layout.interval_us
    blocks = blocks_by_start(data, traceheader.start_times_ns(headers, name), rate, metas)
    file_headers = {"endian": layout.endian, "textual": textual, "binary": binary}
    return Recording(format=NAME, blocks=blocks, source=name, file_headers=file_headers)


def check_layout(layout: Layout, name: str) -> int:
    """Refuse what this reader cannot read right; return the number of traces."""
    code = layout.format_code
    if code not in SUPPORTED_FORMATS:
        supported = ", ".join(f"{c} ({d})" for c, d in SUPPORTED_FORMATS.items())
        raise FormatError(
            name, f"unsupported SEG-Y sample format code {code}; supported: {supported}"
        )
    if layout.ext_text_headers < 0:
        raise FormatError(name, "variable number of extended textual headers is not supported")
    if layout.extra_trace_headers:
        raise FormatError(
            name,
            f"SEG-Y rev 2 trace header extensions ({layout.extra_trace_headers} per trace) "
            "are not supported",
        )
    if layout.interval_us <= 0:
        raise FormatError(
            name, "no sample interval in the binary header (bytes 3217-3218) or trace header"
        )
    traces_bytes = layout.size - layout.data_offset
    n_traces, extra = divmod(traces_bytes, layout.trace_bytes)
    if n_traces == 0 or extra:
        raise FormatError(
            name,
            f"truncated or variable-length SEG-Y: {traces_bytes} bytes after the file headers "
            f"is not a whole number of {layout.trace_bytes}-byte traces (240-byte header + "
            f"{layout.n_samples} samples × {FORMAT_SIZES[layout.format_code]} bytes): "
            f"{n_traces} traces and {extra} bytes over",
        )
    return n_traces


def read_trace_headers(
    path: Path, endian: str, offset: int, trace_bytes: int, n_traces: int
) -> np.ndarray:
    """All trace headers (fixed-length traces from byte ``offset``) as one structured array."""
    record = np.dtype(
        [
            ("h", traceheader.header_dtype(endian)),
            ("d", f"V{trace_bytes - traceheader.HEADER_BYTES}"),
        ]
    )
    view = np.memmap(path, dtype=record, mode="r", offset=offset, shape=(n_traces,))
    headers = np.array(view["h"])
    del view
    return headers


@dataclass(frozen=True)
class Plan:
    """How a recording maps onto fixed-length SEG-Y traces."""

    interval_us: int
    n_samples: int
    format_code: int
    headers: list[dict[str, int]]
    data: list[np.ndarray]


def plan(recording: Recording, floats_only: bool = False) -> Plan | str:
    """A SEG-Y layout that carries the recording without loss, or the reason there is none.

    Lossless means: one sample count and an integer sample interval (µs) for all traces, both
    at most 32767; int32-range integers (written int32) or floats (written IEEE float32;
    ``floats_only`` for SU, which has no integer format); every start time exact to the µs
    in the trace header; no SEED codes (SEG-Y has no place for them).
    """
    blocks = recording.blocks
    if not blocks:
        return "no traces"
    if len({(b.rate, b.n_samples) for b in blocks}) > 1:
        return "traces differ in sample rate or length"
    interval = Fraction(10**6) / blocks[0].rate
    n_samples = blocks[0].n_samples
    if interval.denominator != 1 or not 1 <= interval <= MAX_HEADER_WORD:
        return f"sample interval {float(interval)} µs is not an integer in 1..{MAX_HEADER_WORD}"
    if not 1 <= n_samples <= MAX_HEADER_WORD:
        return f"{n_samples} samples per trace is not in 1..{MAX_HEADER_WORD}"
    kinds = {b.data.dtype.kind for b in blocks}
    if kinds - {"f"} and (floats_only or kinds - {"i", "u"}):
        return f"sample types {sorted(kinds)} cannot be written without loss"
    code = 5 if "f" in kinds else 2
    if code == 2 and not all(_fits_int32(b.data) for b in blocks):
        return "integer samples exceed the int32 range"
    headers: list[dict[str, int]] = []
    data: list[np.ndarray] = []
    cache: dict[tuple[int, tuple[Any, ...]], dict[str, int] | None] = {}
    for block in blocks:
        for meta, row in zip(block.traces, block.data, strict=True):
            if meta.network or meta.station or meta.location or meta.channel:
                return f"trace {meta.index} carries a SEED id that SEG-Y cannot hold"
            key = (block.starttime_ns, tuple(sorted(meta.headers.items())))
            if key not in cache:
                cache[key] = traceheader.encode_start(block.starttime_ns, meta.headers)
            timing = cache[key]
            if timing is None:
                return f"trace {meta.index}: start time {block.starttime_ns} ns does not fit"
            headers.append(
                {
                    **meta.headers,
                    **timing,
                    "TRACE_SAMPLE_COUNT": n_samples,
                    "TRACE_SAMPLE_INTERVAL": int(interval),
                }
            )
            data.append(row)
    return Plan(int(interval), n_samples, code, headers, data)


def _fits_int32(data: np.ndarray) -> bool:
    info = np.iinfo(np.int32)
    return data.size == 0 or (int(data.min()) >= info.min and int(data.max()) <= info.max)


def can_write(recording: Recording) -> bool:
    """True if :func:`write` can carry the recording without loss (see :func:`plan`)."""
    return isinstance(plan(recording), Plan)


def write(recording: Recording, out: BinaryIO) -> None:
    """Write the recording as SEG-Y (int32 or IEEE float) to an open binary file."""
    layout = plan(recording)
    if isinstance(layout, str):
        raise FormatError(recording.source, f"cannot write SEG-Y without loss: {layout}")
    fh = recording.file_headers
    write_segyio(
        layout,
        out,
        endian=fh.get("endian", "big"),
        textual=fh.get("textual", []),
        binary=fh.get("binary", {}),
    )


def write_segyio(
    layout: Plan,
    out: BinaryIO,
    *,
    endian: str,
    textual: list[bytes],
    binary: dict[str, int],
    skip: int = 0,
) -> None:
    """Write a planned SEG-Y through segyio (which needs a path), then copy it into ``out``.

    ``skip`` leaves off that many leading bytes (SU is SEG-Y without the file headers).
    """
    import segyio

    spec = segyio.spec()
    spec.format = layout.format_code
    spec.samples = list(range(layout.n_samples))
    spec.tracecount = len(layout.data)
    spec.endian = endian
    spec.ext_headers = max(len(textual) - 1, 0)
    bin_fields = {str(f): int(f) for f in segyio.BinField.enums()}
    trace_fields = {str(f): int(f) for f in segyio.TraceField.enums()}
    dtype = np.float32 if layout.format_code == 5 else np.int32
    with tempfile.TemporaryDirectory(prefix="ccs-segy-") as tmp:
        path = os.path.join(tmp, "out.segy")
        with segyio.create(path, spec) as f:
            for i, text in enumerate(textual):
                f.text[i] = text
            words = {  # segyio cannot write the unassigned words (rev 2 extension counts)
                bin_fields[k]: v
                for k, v in binary.items()
                if k in bin_fields and not k.startswith("Unassigned")
            }
            words.update(
                {
                    bin_fields["Interval"]: layout.interval_us,
                    bin_fields["Samples"]: layout.n_samples,
                    bin_fields["Format"]: layout.format_code,
                    bin_fields["ExtSamples"]: 0,
                    bin_fields["ExtendedHeaders"]: spec.ext_headers,
                }
            )
            f.bin.update(words)
            for i, (trace, row) in enumerate(zip(layout.headers, layout.data, strict=True)):
                f.header[i] = {trace_fields[k]: v for k, v in trace.items() if k in trace_fields}
                f.trace[i] = np.asarray(row, dtype=dtype)
        with open(path, "rb") as src:
            src.seek(skip)
            shutil.copyfileobj(src, out, 1 << 20)
