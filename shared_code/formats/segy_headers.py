"""SEG-Y file headers: what the textual and binary headers say about the trace layout.

Byte positions are 1-based as the standard writes them (SEG-Y rev 1, May 2002; rev 2.0,
SEG Technical Standards Committee, January 2017; rev 2.1, October 2023).

Sample interval (µs) and sample count: the first *valid* value of these, in this order
(rev 2.0 "Binary File Header": the extended words "override" the standard ones when nonzero;
extended words win over 16-bit ones, which writers leave 0 or saturate at 32767, and the
file's over the first trace's). When two valid values differ, the earlier one wins::

    interval: binary 3273-3280 (rev >= 2, IEEE double) > first trace's extension 1 bytes
              145-152 (IEEE double) > binary 3217-3218 > first trace's bytes 117-118
    samples:  binary 3269-3272 (rev >= 2) > first trace's extension 1 bytes 137-140
              > binary 3221-3222 > first trace's bytes 115-116

That is the file's interval; where the traces' own interval words (bytes 117-118, extension
1 bytes 145-152) differ among themselves, each trace keeps its own, as ObsPy reads them
(:func:`shared_code.formats.trace_file.TraceSource`). An interval is valid when it is a
finite number > 0: the 16-bit words are two's complement
(rev 1: "all values in the Binary File Header are two's complement integers"), so -2 is an
invalid interval, not 65534 µs, and the next word is used. A sample count is valid when it
is > 0 (the 16-bit counts are unsigned, rev 2.0) and, if any count does, when it gives a
whole number of traces for the file's size (so a binary count that disagrees with the file
gives way to the trace header's).

Trace header extensions: N additional 240-byte headers follow each standard trace header.
Rev 2.0 keeps N in binary bytes 3507-3510 (int32); rev 2.1 narrowed it to 3507-3508 (16
bits) and put the survey type in 3509-3510 (so a rev 2.1 file with one extension and survey
type 0 reads 65536 as a rev 2.0 int32). As TGSAI/segy does (src/segy/standards/fields/
binary.py: Rev2 MAX_EXTENDED_TRACE_HEADERS (307, "int32"), Rev21 (307, "int16") and
SURVEY_TYPE (309, "int16")), the revision (major byte 3501, minor byte 3502; little-endian
writers such as segyio swap the two) picks the word; rev 0/1 files have no such word. The
byte order is the rev 2 constant's (binary bytes 3297-3300, 0x01020304 as written) when
present, else whichever order gives a known sample format code.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from shared_code.formats import traceheader
from shared_code.formats.errors import FormatError
from shared_code.formats.segy_samples import FORMAT_NAMES, FORMAT_SIZES, SUPPORTED_FORMATS

TEXT_BYTES = 3200
FILE_HEADER_BYTES = 3600
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
_PRINTABLE = frozenset(range(0x21, 0x7F))


@dataclass(frozen=True)
class FileLayout:
    """What the file and binary headers say about a SEG-Y file's trace layout.

    ``samples_words`` and ``interval_words`` list every place the sample count and interval
    were looked for, as (where, value), in the order of precedence: for error messages.
    """

    endian: str
    format_code: int
    n_samples: int
    #: Sample interval in µs (0 if none is valid); not a whole number only from the rev 2
    #: IEEE-double words.
    interval_us: float
    ext_text_headers: int
    #: Rev 2 additional 240-byte trace headers per trace (binary bytes 3507-3510 or 3507-3508).
    extra_trace_headers: int
    size: int
    revision: tuple[int, int] = (0, 0)
    samples_words: tuple[tuple[str, float], ...] = field(default=())
    interval_words: tuple[tuple[str, float], ...] = field(default=())

    @property
    def extensions_word(self) -> str:
        """Where the trace header extension count is (depends on the revision)."""
        if self.revision >= (2, 1):
            return "bytes 3507-3508 (rev 2.1, 16 bits)"
        return "bytes 3507-3510 (rev 2.0, 32 bits)"

    @property
    def data_offset(self) -> int:
        return FILE_HEADER_BYTES + TEXT_BYTES * max(self.ext_text_headers, 0)

    @property
    def header_bytes(self) -> int:
        """Bytes of trace headers per record: the standard header and its extensions."""
        return traceheader.HEADER_BYTES * (1 + max(self.extra_trace_headers, 0))

    @property
    def sample_bytes(self) -> int:
        return FORMAT_SIZES.get(self.format_code, 0)

    @property
    def trace_bytes(self) -> int:
        return self.header_bytes + self.n_samples * self.sample_bytes


def probe(path: Path) -> FileLayout | None:
    """Layout of a SEG-Y file, or None if the headers do not look like SEG-Y."""
    return _probe(path)[0]


def damaged_layout(path: Path) -> FileLayout | None:
    """The layout of a file that looks like SEG-Y but whose words make no sense, or None.

    A file whose first 3200 bytes read as a textual header (EBCDIC or ASCII) followed by a
    binary (not text) header, with no sample format code or sample count that works, is
    asked about only after every other reader declined it (other formats, e.g. DMX, also
    start with text): its layout then carries the words, and :func:`check_layout` says
    what is wrong with them.
    """
    good, damaged = _probe(path)
    if good is not None or damaged is None:
        return None
    # SEG-Y rev 1, section 3: the textual header is 40 card images of 80 bytes "each
    # beginning with the letter C" (0x43 in ASCII, 0xC3 in EBCDIC). A damaged file is taken
    # for SEG-Y only with that mark on its first card: a SEED volume header, a DMX file or
    # a text log also start as text.
    with open(path, "rb") as fh:
        mark = fh.read(1)
    if mark not in (b"C", b"\xc3"):
        return None
    return damaged


def _probe(path: Path) -> tuple[FileLayout | None, FileLayout | None]:
    """(the layout of a readable SEG-Y, the layout of one that only looks like SEG-Y)."""
    size = os.path.getsize(path)
    if size < FILE_HEADER_BYTES:
        return None, None
    with open(path, "rb") as fh:
        head = fh.read(FILE_HEADER_BYTES)
        text_like = _looks_like_text(head[:TEXT_BYTES]) and not _looks_like_text(
            head[TEXT_BYTES:], _PRINTABLE, 0.5
        )
        first: dict[int, bytes] = {}  # first trace's headers, read once per data offset
        fallback: FileLayout | None = None
        for endian, order in _byte_orders(head):
            code = struct.unpack_from(f"{order}H", head, 3224)[0]
            ext_text = struct.unpack_from(f"{order}h", head, 3504)[0]
            offset = FILE_HEADER_BYTES + TEXT_BYTES * max(ext_text, 0)
            if offset not in first:
                fh.seek(offset)
                first[offset] = fh.read(2 * traceheader.HEADER_BYTES)
            layout = _layout(head, first[offset], endian, size)
            if code in FORMAT_SIZES and layout.n_samples > 0:
                whole = (size - layout.data_offset) % layout.trace_bytes == 0
                if whole or text_like:
                    return layout, None
            if fallback is None:
                fallback = layout
    return None, fallback if text_like else None


def _layout(head: bytes, trace: bytes, endian: str, size: int) -> FileLayout:
    """The layout the headers give in this byte order (``trace``: the first trace's
    standard header and, if present, its first extension)."""
    order = ">" if endian == "big" else "<"
    code = struct.unpack_from(f"{order}H", head, 3224)[0]
    ext_text = struct.unpack_from(f"{order}h", head, 3504)[0]
    major, minor = head[3500], head[3501]
    if order == "<" and major in (0, 1) and minor in (1, 2):
        # The revision written as a little-endian 16-bit word (segyio does, and rev 1 files
        # written backwards: TGSAI/segy PR #83): bytes [minor, major]; no revision 0.1, 0.2,
        # 1.1 or 1.2 exists to be confused with.
        major, minor = minor, major
    revision = (major, minor if major >= 2 else 0)
    extra = 0
    if revision >= (2, 1):
        extra = struct.unpack_from(f"{order}H", head, 3506)[0]
    elif major >= 2:
        extra = struct.unpack_from(f"{order}i", head, 3506)[0]
    interval_words: list[tuple[str, float]] = []
    samples_words: list[tuple[str, float]] = []
    if major >= 2:
        samples_words.append(
            ("binary header bytes 3269-3272", struct.unpack_from(f"{order}i", head, 3268)[0])
        )
        interval_words.append(
            ("binary header bytes 3273-3280", struct.unpack_from(f"{order}d", head, 3272)[0])
        )
    if extra > 0 and len(trace) >= 2 * traceheader.HEADER_BYTES:
        ext_ns, ext_dt = struct.unpack_from(f"{order}Ixxxxd", trace, 240 + 136)
        samples_words.append(("trace 0 extension 1 bytes 137-140", ext_ns))
        interval_words.append(("trace 0 extension 1 bytes 145-152", ext_dt))
    short_dt, short_ns = struct.unpack_from(f"{order}hxxH", head, 3216)
    samples_words.append(("binary header bytes 3221-3222", short_ns))
    interval_words.append(("binary header bytes 3217-3218", short_dt))
    if len(trace) >= traceheader.HEADER_BYTES:
        trace_ns, trace_dt = struct.unpack_from(f"{order}Hh", trace, 114)
        samples_words.append(("trace 0 bytes 115-116", trace_ns))
        interval_words.append(("trace 0 bytes 117-118", trace_dt))
    interval = next((v for _, v in interval_words if _valid(v)), 0)
    header_bytes = traceheader.HEADER_BYTES * (1 + max(extra, 0))
    data = size - FILE_HEADER_BYTES - TEXT_BYTES * max(ext_text, 0)
    counts = [int(v) for _, v in samples_words if v > 0]
    record = FORMAT_SIZES.get(code, 0)
    whole = [n for n in counts if record and data % (header_bytes + n * record) == 0]
    return FileLayout(
        endian=endian,
        format_code=code,
        n_samples=(whole or counts or [0])[0],
        interval_us=interval,
        ext_text_headers=ext_text,
        extra_trace_headers=extra,
        size=size,
        revision=revision,
        samples_words=tuple(samples_words),
        interval_words=tuple(interval_words),
    )


def _byte_orders(head: bytes) -> list[tuple[str, str]]:
    """Byte orders to try: the rev 2 constant's (bytes 3297-3300) alone if it is there."""
    orders = [("big", ">"), ("little", "<")]
    for endian, order in orders:
        if struct.unpack_from(f"{order}I", head, 3296)[0] == BYTE_ORDER_CONSTANT:
            return [(endian, order)]
    return orders


def _valid(value: float) -> bool:
    """A usable interval: a finite number > 0 (else unset or garbage in a header word)."""
    return math.isfinite(value) and value > 0


def _looks_like_text(
    block: bytes, allowed: frozenset[int] = _TEXT_BYTES_SET, share: float = _TEXT_LIKE
) -> bool:
    text_like = sum(1 for b in block if b in allowed)
    return text_like >= share * len(block)


def _words(words: tuple[tuple[str, float], ...]) -> str:
    return ", ".join(f"{where} hold {value:g}" for where, value in words)


def check_layout(layout: FileLayout, name: str) -> int | None:
    """Refuse what this reader cannot read right, saying where; return the number of traces,
    or None if the file is not a whole number of traces of the file's length (the traces may
    differ in length: :mod:`segy_walk`)."""
    code = layout.format_code
    order = f"{layout.endian}-endian"
    if code not in SUPPORTED_FORMATS:
        supported = ", ".join(f"{c} ({d})" for c, d in SUPPORTED_FORMATS.items())
        if code in FORMAT_NAMES:
            reason = (
                f"unsupported SEG-Y sample format code {code} ({FORMAT_NAMES[code]}) in binary "
                f"header bytes 3225-3226 ({order})"
            )
        else:
            reason = (
                f"binary header bytes 3225-3226 hold {code} ({order}), not a SEG-Y sample "
                "format code"
            )
        raise FormatError(name, f"{reason}; supported: {supported}")
    if layout.ext_text_headers < 0:
        raise FormatError(
            name,
            f"binary header bytes 3505-3506 hold {layout.ext_text_headers} ({order}): a "
            "variable number of extended textual headers is not supported",
        )
    traces_bytes = layout.size - layout.data_offset
    extensions = layout.extra_trace_headers
    if extensions < 0 or (extensions and layout.header_bytes > traces_bytes):
        raise FormatError(
            name,
            f"SEG-Y rev {layout.revision[0]}.{layout.revision[1]} binary header "
            f"{layout.extensions_word} announces {extensions} trace header extensions per "
            f"trace, which do not fit the {traces_bytes} bytes of traces",
        )
    if layout.n_samples <= 0:
        raise FormatError(
            name, f"no sample count: {_words(layout.samples_words)} ({order}), none > 0"
        )
    if not _valid(layout.interval_us):
        raise FormatError(
            name,
            f"no valid sample interval: {_words(layout.interval_words)} µs ({order}), none > 0",
        )
    if traces_bytes <= 0:
        raise FormatError(
            name,
            f"no traces: the file ends at byte {layout.size}, where its file headers end "
            f"(3600 bytes + {max(layout.ext_text_headers, 0)} extended textual headers; "
            "truncated?)",
        )
    n_traces, extra = divmod(traces_bytes, layout.trace_bytes)
    return None if n_traces == 0 or extra else n_traces


def not_whole(layout: FileLayout) -> str:
    """Why the file is not fixed-length traces of the length its headers give, in bytes."""
    traces_bytes = layout.size - layout.data_offset
    n_traces, extra = divmod(traces_bytes, layout.trace_bytes)
    headers = "240-byte header"
    if layout.extra_trace_headers:
        headers += f" + {layout.extra_trace_headers} 240-byte trace header extensions"
    return (
        f"{traces_bytes} bytes after the file headers (from byte {layout.data_offset}) are not "
        f"a whole number of {layout.trace_bytes}-byte traces ({headers} + {layout.n_samples} "
        f"samples × {layout.sample_bytes} bytes; {_words(layout.samples_words)}): "
        f"{n_traces} traces and {extra} bytes over"
    )


def file_headers_by_segyio(
    path: Path, name: str, layout: FileLayout, n_traces: int
) -> tuple[list[bytes], dict[str, int]]:
    """Textual headers and binary header words (by segyio name) as segyio reads them.

    segyio cannot open every file this reader reads (trace header extensions, or header
    words it takes differently, e.g. a negative sample interval): those are read by hand.
    """
    import segyio

    try:
        with segyio.open(str(path), "r", ignore_geometry=True, endian=layout.endian) as f:
            found = (f.tracecount, len(f.samples))
            textual = [bytes(f.text[i]) for i in range(1 + f.ext_headers)]
            binary = {str(k): int(v) for k, v in f.bin.items()}
    except RuntimeError:
        found = (-1, -1)
    if found != (n_traces, layout.n_samples):
        return file_headers_by_hand(path, layout)
    return textual, binary


def file_headers_by_hand(path: Path, layout: FileLayout) -> tuple[list[bytes], dict[str, int]]:
    """Textual headers (as ASCII, as segyio gives them) and binary header words by segyio
    name, read here."""
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
    binary["Interval"] = struct.unpack_from(order + "h", head, 3216)[0]
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
