"""Waveform formats: pick the reader by content, read a Recording, write the decimated file.

One module per format family (as ObsPy's ``obspy/io/<format>/core.py``), each with a cheap
``is_<format>(path)`` content check and ``read(path, name) -> Recording``; writable ones also
have ``can_write(recording)`` (lossless?) and ``write(recording, binary_file)``. A new format
is one module and one line in :data:`FORMATS`. Extensions are never looked at.

Importing this package is cheap: ObsPy and segyio are imported by the functions that use them.

Typical use, whole files in memory::

    recording = formats.read(local_path, name=blob_name)      # FormatError names the blob
    ...decimate...
    fmt = formats.output_format(decimated)                    # "SEGY", "MSEED", "CCSW"...
    formats.write(decimated, staging_file, fmt)               # file object or path
    extension = formats.EXTENSIONS[fmt]

and streaming, in bounded memory (see :mod:`shared_code.formats.streaming` for which formats
stream and which are read whole)::

    with formats.open_source(local_path, name=blob_name) as source:
        layout = formats.Layout(source.format, source.source, source.file_headers, [...])
        fmt = formats.output_format_for(layout)
        with formats.open_writer(fmt, staging_file, layout) as out:
            for i, block in enumerate(source.blocks):
                for start in range(0, len(block.traces), 64):
                    out.write_rows(i, start, ...decimate(block.rows(start, start + 64))...)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO, TypeVar

from shared_code.formats import ccsw, compression, generic, gse2, mseed, sac, seg2, segy, su
from shared_code.formats.errors import FormatError
from shared_code.formats.streaming import (
    BlockLayout,
    BlockSource,
    Layout,
    RecordingSource,
    Source,
    Writer,
    layout_of,
)
from shared_code.waveforms import Recording

__all__ = ["EXTENSIONS", "FORMATS", "Format", "FormatError", "detect", "output_format", "read"]
__all__ += ["layout_of", "open_source", "open_writer", "output_format_for", "write"]
__all__ += ["BlockLayout", "BlockSource", "Layout", "Source", "Writer"]

T = TypeVar("T")


@dataclass(frozen=True)
class Format:
    """One format family: its name, output extension, content check, readers, writers.

    ``open_source`` is the streaming reader (None: the file is read whole and wrapped);
    ``can_write_layout`` and ``writer`` are the streaming writer's side of ``can_write`` and
    ``write``.
    """

    name: str
    extension: str
    detect: Callable[[Path], bool]
    read: Callable[[Path, str], Recording]
    can_write: Callable[[Recording], bool] | None = None
    write: Callable[[Recording, BinaryIO], None] | None = None
    open_source: Callable[[Path, str], Source] | None = None
    can_write_layout: Callable[[Layout], bool] | None = None
    writer: Callable[[Layout, BinaryIO], Writer] | None = None

    @classmethod
    def of(cls, module: ModuleType, detect: Callable[[Path], bool]) -> Format:
        """A format from its module: NAME, EXTENSION, read and the optional functions."""
        return cls(
            module.NAME,
            module.EXTENSION,
            detect,
            module.read,
            getattr(module, "can_write", None),
            getattr(module, "write", None),
            getattr(module, "open_source", None),
            getattr(module, "can_write_layout", None),
            getattr(module, "writer", None),
        )


#: Checked in this order: magic numbers first, SEG-Y before SU (SU has no file header, only
#: structure), ObsPy's other readers last.
FORMATS: tuple[Format, ...] = (
    Format.of(ccsw, ccsw.is_ccsw),
    Format.of(seg2, seg2.is_seg2),
    Format.of(mseed, mseed.is_mseed),
    Format.of(gse2, gse2.is_gse2),
    Format.of(sac, sac.is_sac),
    Format.of(segy, segy.is_segy),
    Format.of(su, su.is_su),
    Format.of(generic, generic.is_obspy),
)
_BY_NAME = {f.name: f for f in FORMATS}
#: Format name -> file extension (no dot) of files written in it.
EXTENSIONS: dict[str, str] = {f.name: f.extension for f in FORMATS if f.write}
#: Where a recording goes when its own format cannot carry it without loss: miniSEED, which
#: ObsPy and SeisComP read; where miniSEED cannot carry it either (codes too long or not
#: ASCII, an id twice in one file, a code-less trace index above 99999), CCSW, the project's
#: own lossless container.
FALLBACK = mseed.NAME
LAST_RESORT = ccsw.NAME
_SIGNATURES = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"%PDF": "a PDF document",
}


def detect(path: str | os.PathLike[str], name: str | None = None) -> str:
    """The format name of a file, from its content; ``name`` is shown in errors (blob name)."""
    path = Path(path)
    shown = name or str(path)
    size = path.stat().st_size
    if size == 0:
        raise FormatError(shown, "empty file (0 bytes)")
    for fmt in FORMATS:
        if fmt.detect(path):
            return fmt.name
    damaged = segy.damaged_reason(path, shown)
    if damaged is not None:
        raise FormatError(shown, damaged)
    with open(path, "rb") as fh:
        head = fh.read(512)
    raise FormatError(shown, f"not seismic data: {_describe(head)}, no waveform reader accepts it")


def _describe(head: bytes) -> str:
    packed = compression.describe(head)
    if packed:  # decimate_file decompresses before reading; a reader never sees it
        return f"looks like {packed}, which must be decompressed before reading"
    for magic, what in _SIGNATURES.items():
        if head.startswith(magic):
            return f"looks like {what}"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return f"unknown binary content starting {head[:8]!r}"
    return f"looks like a text file starting {head[:40].decode('utf-8')!r}"


def read(path: str | os.PathLike[str], name: str | None = None) -> Recording:
    """Read a waveform file of any supported format into a Recording.

    ``path`` is the local file; ``name`` (e.g. the blob name) is what errors and
    ``Recording.source`` show. Raises :class:`FormatError` for empty, truncated, non-seismic
    or unsupported files; library errors are wrapped into it with the reason.
    """
    path = Path(path)
    shown = name or str(path)
    fmt = _BY_NAME[detect(path, shown)]
    recording = _guarded(fmt, shown, lambda: fmt.read(path, shown))
    if recording.n_traces == 0:
        raise FormatError(shown, f"{recording.format} file holds no traces")
    return recording


def open_source(path: str | os.PathLike[str], name: str | None = None) -> Source:
    """Open a waveform file of any supported format for reading by blocks (a context manager).

    Detection, ``name`` and errors as :func:`read`; ``blocks`` are the same grouping, order
    and :class:`~shared_code.waveforms.TraceMeta` as ``read(...).blocks``. SEG-Y and SU are
    read on demand in bounded memory; other formats are read whole (small files, see
    :mod:`shared_code.formats.streaming`).
    """
    path = Path(path)
    shown = name or str(path)
    fmt = _BY_NAME[detect(path, shown)]
    opener = fmt.open_source
    if opener is None:
        source: Source = RecordingSource(_guarded(fmt, shown, lambda: fmt.read(path, shown)))
    else:
        source = _guarded(fmt, shown, lambda: opener(path, shown))
    if not any(b.traces for b in source.blocks):
        source.close()
        raise FormatError(shown, f"{source.format} file holds no traces")
    if not any(b.traces and b.n_samples for b in source.blocks):
        source.close()
        raise FormatError(
            shown, f"{source.format} file holds no waveform samples (every trace has 0 samples)"
        )
    return source


def _guarded(fmt: Format, shown: str, call: Callable[[], T]) -> T:
    """Run a reader; library errors become a :class:`FormatError` with the reason."""
    try:
        return call()
    except (FormatError, MemoryError, FileNotFoundError, PermissionError):
        raise
    except Exception as exc:
        raise FormatError(
            shown, f"unreadable {fmt.name} file: {type(exc).__name__}: {exc}"
        ) from exc


def output_format(recording: Recording) -> str:
    """The format family for the decimated file of this recording.

    The input's family where its writer carries the data, the µs start times, the sample
    interval and each trace's identity without loss (decided per recording: e.g. a SEG-Y whose
    interval is not a whole number of µs ≤ 32767, or whose start time does not fit the trace
    header, goes to miniSEED); miniSEED otherwise (SEG-2 and formats without a writer), and
    CCSW where miniSEED cannot carry the trace identities (:data:`LAST_RESORT`).
    """
    fmt = _BY_NAME.get(recording.format)
    if fmt and fmt.can_write and fmt.write and fmt.can_write(recording):
        return fmt.name
    return _fallback(layout_of(recording))


def output_format_for(layout: Layout) -> str:
    """:func:`output_format` decided from a layout alone, before any sample is known.

    Integer dtypes count as int32 samples (what decimating integer input gives); a writer
    refuses rows outside that range. SAC and GSE2 are chosen on a trial write of zeros, their
    samples checked when their writer closes.
    """
    fmt = _BY_NAME.get(layout.format_source)
    if fmt and fmt.can_write_layout and fmt.writer and fmt.can_write_layout(layout):
        return fmt.name
    return _fallback(layout)


def _fallback(layout: Layout) -> str:
    """miniSEED where it carries the identities and sample types, CCSW where it does not.

    Sample values (int32 range) are not part of the choice: neither holds more.
    """
    return FALLBACK if mseed.can_write_layout(layout) else LAST_RESORT


def open_writer(
    fmt: str,
    target: str | os.PathLike[str] | BinaryIO,
    layout: Layout,
    *,
    intermediate: bool = False,
) -> Writer:
    """A streaming writer of format ``fmt`` (a key of :data:`EXTENSIONS`) for this layout.

    ``target`` is an open binary file (left open) or a path (opened now, closed with the
    writer). Give it rows with :meth:`Writer.write_rows`, then close it (or use ``with``).
    ``intermediate``: the decimated file, read back by convert; its miniSEED keeps NaN/Inf
    samples (other miniSEED makes them gaps, which would split a trace on read-back).
    """
    spec = _BY_NAME.get(fmt)
    if spec is None or spec.writer is None:
        raise FormatError(layout.source, f"no writer for format {fmt!r}")
    make = mseed.intermediate_writer if intermediate and fmt == mseed.NAME else spec.writer
    if not isinstance(target, (str, os.PathLike)):
        return make(layout, target)
    out = open(target, "wb")  # noqa: SIM115 (the writer owns and closes it)
    try:
        writer = make(layout, out)
    except BaseException:
        out.close()
        raise
    writer.own_target()
    return writer


def write(recording: Recording, target: str | os.PathLike[str] | BinaryIO, fmt: str) -> None:
    """Write a recording in format ``fmt`` (a key of :data:`EXTENSIONS`).

    ``target`` is an open binary file (e.g. the atomic staging file) or a path.
    """
    spec = _BY_NAME.get(fmt)
    if spec is None or spec.write is None:
        raise FormatError(recording.source, f"no writer for format {fmt!r}")
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as out:
            spec.write(recording, out)
    else:
        spec.write(recording, target)
