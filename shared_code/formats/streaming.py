"""Streaming access to waveform files: read blocks of traces or samples, write rows as they come.

A raw file can be far larger than the memory a function instance has (a 4 GB SEG-Y against a
512 MB bound), so the pipeline never holds it whole. A :class:`Source` describes the file
(format, file headers, the same :class:`~shared_code.waveforms.Block` grouping and
:class:`~shared_code.waveforms.TraceMeta` as ``formats.read``) and hands out samples on
request: :meth:`BlockSource.rows` (whole traces) and :meth:`BlockSource.columns` (a window of
samples of every trace, e.g. the seam edges). A :class:`Writer` is opened on a :class:`Layout`
(the decimated file's shape, known before the first sample) and takes rows in file order.

Memory, per format:

* SEG-Y and SU (and CCSW, :mod:`shared_code.formats.ccsw`, the same way) read and write
  fixed-length trace records at computed file offsets (SEG-Y traces of different lengths at
  offsets found by walking their headers, :mod:`shared_code.formats.segy_walk`; ``pread``
  into a bounded buffer, decoded by numpy): memory is the arrays asked for, plus at most
  :data:`CHUNK_BYTES`. They use plain reads rather than ``mmap`` on purpose: pages of a
  mapped file count in the process's RSS while mapped (and the kernel maps up to 64 kB around
  each faulting page), so a scan through a memmap grows RSS towards the file size.
* miniSEED writing is streamed (each ``write_rows`` call appends its traces' 512-byte records).
* **The exception to the bound:** miniSEED, SAC, GSE2, SEG-2 and ObsPy-read sources are read
  whole by ``formats.read`` and wrapped (:class:`RecordingSource`); SAC and GSE2 writers collect
  the rows and write at :meth:`Writer.close` (:class:`BufferingWriter`). Such files are small in
  practice (one trace per SAC file; minutes of a few channels).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Self

import numpy as np

from shared_code.formats.errors import FormatError
from shared_code.waveforms import Block, Recording, Timed, TraceMeta

#: Largest raw read buffer (bytes) a streaming reader decodes from at a time.
CHUNK_BYTES = 8 << 20


@dataclass
class BlockLayout(Timed):
    """Traces sharing start time (ns since 1970 UTC), sample rate (Hz), length and dtype."""

    traces: list[TraceMeta]
    sampling_rate: float
    starttime_ns: int
    n_samples: int
    dtype: np.dtype

    @property
    def n_traces(self) -> int:
        return len(self.traces)

    @property
    def is_integer(self) -> bool:
        return self.dtype.kind in "iu"


@dataclass
class Layout:
    """Everything a writer must know before the first sample: the written file's shape.

    ``format_source`` is the input's format name (whose file headers ``file_headers`` are,
    e.g. SEG-Y textual and binary headers); ``source`` is the display name used in errors.
    """

    format_source: str
    source: str
    file_headers: dict[str, Any]
    blocks: list[BlockLayout]

    @property
    def n_traces(self) -> int:
        return sum(b.n_traces for b in self.blocks)


def layout_of(recording: Recording) -> Layout:
    """The layout of an in-memory recording (its blocks' shapes, dtypes and trace metadata)."""
    return Layout(
        recording.format,
        recording.source,
        recording.file_headers,
        [
            BlockLayout(b.traces, b.sampling_rate, b.starttime_ns, b.n_samples, b.data.dtype)
            for b in recording.blocks
        ],
    )


class BlockSource(BlockLayout, ABC):
    """One block of a file, with its samples read on request.

    Returned arrays are 2-D in the block's ``dtype`` (int16/int32 counts or float32 as
    ``formats.read`` gives) and must be treated as read-only: some sources return views.
    """

    @abstractmethod
    def rows(self, start: int, stop: int) -> np.ndarray:
        """Traces ``[start, stop)`` of the block (block order), all samples: (n, n_samples)."""

    @abstractmethod
    def columns(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of every trace of the block: (n_traces, stop - start)."""

    def edges(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The first and the last ``size`` samples of every trace: (head, tail), each
        (n_traces, size); ``size`` ≤ n_samples."""
        return self.columns(0, size), self.columns(self.n_samples - size, self.n_samples)

    def stored_rows(self, start: int, stop: int) -> np.ndarray:
        """Traces ``[start, stop)`` as :meth:`rows`, but possibly in the file's own byte order
        and strided (a view of the read buffer, valid until the next read of this source).

        For a consumer that converts a few traces at a time anyway (the decimator): it saves
        a pass over the whole chunk. The values are those of :meth:`rows`.
        """
        return self.rows(start, stop)


class Source(ABC):
    """An open waveform file: its format, headers and blocks. Close it (or use ``with``)."""

    format: str
    source: str
    file_headers: dict[str, Any]
    blocks: list[BlockSource]

    @abstractmethod
    def close(self) -> None:
        """Release the file; the blocks cannot be read after this."""

    def recording(self) -> Recording:
        """The whole file in memory (what ``formats.read`` returns)."""
        blocks = [
            Block(b.rows(0, b.n_traces), b.sampling_rate, b.starttime_ns, b.traces)
            for b in self.blocks
        ]
        return Recording(self.format, blocks, self.source, self.file_headers)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ArrayBlock(BlockSource):
    """A block held in memory (read-only views of its array)."""

    def __init__(self, block: Block) -> None:
        super().__init__(
            block.traces, block.sampling_rate, block.starttime_ns, block.n_samples, block.data.dtype
        )
        self._data = block.data

    def rows(self, start: int, stop: int) -> np.ndarray:
        return _read_only(self._data[start:stop])

    def columns(self, start: int, stop: int) -> np.ndarray:
        return _read_only(self._data[:, start:stop])


def _read_only(view: np.ndarray) -> np.ndarray:
    view = view.view()
    view.flags.writeable = False
    return view


class RecordingSource(Source):
    """A file read whole by its format's reader (formats outside the memory bound, see above)."""

    def __init__(self, recording: Recording) -> None:
        self.format = recording.format
        self.source = recording.source
        self.file_headers = recording.file_headers
        self.blocks = [ArrayBlock(b) for b in recording.blocks]
        self._recording = recording

    def recording(self) -> Recording:
        return self._recording

    def close(self) -> None:
        """Nothing to release: the samples are in memory."""


class Writer(ABC):
    """Writes a file of a known :class:`Layout` from rows given in file order.

    Rows come block by block, ascending, each call continuing where the last stopped; the
    file is complete when :meth:`close` returns. Leaving a ``with`` block by an exception
    releases the target without finishing the file (the caller discards the staging file).
    """

    def __init__(self, layout: Layout, out: BinaryIO) -> None:
        self.layout = layout
        self._out = out
        self._owns_out = False
        self._block = 0
        self._row = 0
        self._closed = False

    def write_rows(self, block_index: int, start: int, data: np.ndarray) -> None:
        """Rows ``[start, start + len(data))`` of block ``block_index``: (n, block's n_samples)."""
        if self._closed:
            raise ValueError("write_rows on a closed writer")
        self._skip_complete_blocks()
        if (block_index, start) != (self._block, self._row):
            raise ValueError(
                f"rows out of order: got block {block_index} row {start}, "
                f"expected block {self._block} row {self._row}"
            )
        block = self.layout.blocks[block_index]
        if data.ndim != 2 or data.shape[1] != block.n_samples:
            raise ValueError(f"rows of shape {data.shape}, block has {block.n_samples} samples")
        if start + len(data) > block.n_traces:
            raise ValueError(f"rows up to {start + len(data)}, block has {block.n_traces} traces")
        if len(data):
            self._write(block_index, start, data)
            self._row += len(data)

    def _skip_complete_blocks(self) -> None:
        blocks = self.layout.blocks
        while self._block < len(blocks) and self._row == blocks[self._block].n_traces:
            self._block, self._row = self._block + 1, 0

    @abstractmethod
    def _write(self, block_index: int, start: int, data: np.ndarray) -> None:
        """Write validated rows (the subclass's encoding)."""

    @abstractmethod
    def _finish(self) -> None:
        """Write what follows the last row (called by :meth:`close` once all rows are in)."""

    def close(self) -> None:
        """Finish the file; an error if rows are missing."""
        if self._closed:
            return
        self._skip_complete_blocks()
        try:
            if self._block < len(self.layout.blocks):
                raise ValueError(
                    f"{self.layout.source}: writer closed at block {self._block} row {self._row}, "
                    f"before all {self.layout.n_traces} traces were written"
                )
            self._finish()
        finally:
            self._release()

    def own_target(self) -> None:
        """Close the output file with the writer (it was opened for the writer, from a path)."""
        self._owns_out = True

    def _release(self) -> None:
        self._closed = True
        if self._owns_out:
            self._out.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._release()


class BufferingWriter(Writer):
    """Collects the rows and writes them with a whole-recording writer at :meth:`close`.

    For small formats whose writer decides what survives (SAC, GSE2; outside the memory
    bound). The format was chosen from the layout alone, so the samples are checked at close
    with ``can_write`` (e.g. GSE2's CM6 range): a :class:`FormatError` rather than a lossy file.
    """

    def __init__(
        self,
        layout: Layout,
        out: BinaryIO,
        fmt: str,
        write: Callable[[Recording, BinaryIO], None],
        can_write: Callable[[Recording], bool],
    ) -> None:
        super().__init__(layout, out)
        self._fmt = fmt
        self._write_recording = write
        self._can_write = can_write
        self._rows: list[list[np.ndarray]] = [[] for _ in layout.blocks]

    def _write(self, block_index: int, start: int, data: np.ndarray) -> None:
        self._rows[block_index].append(np.array(data))

    def _finish(self) -> None:
        blocks = [
            Block(np.concatenate(rows), b.sampling_rate, b.starttime_ns, b.traces)
            for b, rows in zip(self.layout.blocks, self._rows, strict=True)
        ]
        layout = self.layout
        recording = Recording(layout.format_source, blocks, layout.source, layout.file_headers)
        if not self._can_write(recording):
            raise FormatError(layout.source, f"{self._fmt} cannot carry these samples without loss")
        self._write_recording(recording, self._out)


def placeholder(layout: Layout) -> Recording:
    """A recording of zeros with this layout: for trial writes that check the metadata."""
    blocks = [
        Block(
            np.zeros((b.n_traces, b.n_samples), b.dtype),
            b.sampling_rate,
            b.starttime_ns,
            b.traces,
        )
        for b in layout.blocks
    ]
    return Recording(layout.format_source, blocks, layout.source, layout.file_headers)


def fits_int32(data: np.ndarray) -> bool:
    """True if every sample of an integer array fits int32 (floats: always true)."""
    if data.dtype.kind not in "iu" or data.dtype.itemsize < 4 or data.size == 0:
        return True
    if data.dtype.kind == "i" and data.dtype.itemsize == 4:  # int32, either byte order
        return True
    info = np.iinfo(np.int32)
    return int(data.min()) >= info.min and int(data.max()) <= info.max


def check_int32(data: np.ndarray, layout: Layout, fmt: str) -> None:
    """Refuse integer rows outside the int32 range (the writers' integer type)."""
    if not fits_int32(data):
        raise FormatError(layout.source, f"cannot write {fmt}: integer samples exceed int32")


def read_exact(fd: int, buffer: memoryview, offset: int, name: str) -> None:
    """Fill ``buffer`` from byte ``offset`` of an open file (``pread``: no shared position)."""
    done = 0
    while done < len(buffer):
        n = os.preadv(fd, [buffer[done:]], offset + done)
        if n == 0:
            raise FormatError(name, f"file ended at byte {offset + done} (truncated?)")
        done += n


def write_whole(recording: Recording, writer: Writer) -> None:
    """Write an in-memory recording through a streaming writer, one call per block."""
    with writer:
        for i, block in enumerate(recording.blocks):
            writer.write_rows(i, 0, block.data)
