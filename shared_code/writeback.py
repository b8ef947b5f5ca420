"""Files flushed to their device (or file server) while they are still being written.

A decimated file or a MiniSEED file is written a chunk at a time over the whole run of a
stage and must be durable (fsync) before it is renamed into place. Left to the end, that
fsync waits for every byte at once: on a local disk ~40 ms per file set here; on the Azure
Files mount, the upload of the whole file. :class:`EarlyWriteback` starts the flush in a
background thread every :data:`WRITEBACK_BYTES`, so the device works while the stage computes
and :meth:`EarlyWriteback.sync` (the final fsync) finds little left to do.

The wrapper is a real :class:`io.BufferedIOBase`, not just an object with ``write``: library
writers test the type of what they are given. ObsPy's SAC writer takes a path or an
``io.BufferedIOBase`` and nothing else (``obspy/io/sac/core.py`` ``_write_sac``: "Cannot open
'...'" otherwise), and then only calls ``write``; operations a sequential writer cannot offer
(read, seek) raise :class:`io.UnsupportedOperation` as the base class defines.
"""

from __future__ import annotations

import io
import os
import threading
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: Bytes written between background flushes.
WRITEBACK_BYTES = 8 << 20
#: fdatasync where the platform has it (Linux); macOS's Python has only fsync.
_datasync = getattr(os, "fdatasync", os.fsync)


class EarlyWriteback(io.BufferedIOBase):
    """A binary file open for writing, flushed to its device in the background as it grows.

    ``write`` passes through to ``raw`` (an open binary file, e.g. ``open(path, "wb")``), and
    every :data:`WRITEBACK_BYTES` a background thread ``fdatasync``\\ s what was written so far
    (one flush at a time). :meth:`sync` makes the file durable (waits for that flush, raises
    its error, fsyncs the rest); :meth:`close` closes ``raw`` (after waiting for the flush,
    whose error it does not raise: closing without :meth:`sync` abandons the file).
    """

    def __init__(self, raw: BinaryIO, every: int = WRITEBACK_BYTES) -> None:
        super().__init__()
        self._raw = raw
        self._every = every
        self._unflushed = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer, /) -> int:
        n = self._raw.write(data)
        self._unflushed += n
        if self._unflushed >= self._every and not (self._thread and self._thread.is_alive()):
            self._raw.flush()  # Python's buffer to the OS, then the OS's to the device
            self._unflushed = 0
            self._thread = threading.Thread(target=self._sync, name="writeback", daemon=True)
            self._thread.start()
        return n

    def _sync(self) -> None:
        try:
            _datasync(self._raw.fileno())
        except OSError as exc:  # raised by finish(), in the writer's thread
            self._error = exc

    def fileno(self) -> int:
        return self._raw.fileno()

    def flush(self) -> None:
        self._raw.flush()

    @property
    def closed(self) -> bool:
        # The wrapped file's state: io.IOBase's finaliser closes a wrapper that is not closed.
        return self._raw.closed

    def finish(self) -> None:
        """Wait for the background flush; raise its error. The file stays open."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def sync(self) -> None:
        """Make everything written so far durable: :meth:`finish`, flush, fsync."""
        self.finish()
        self._raw.flush()
        os.fsync(self._raw.fileno())

    def close(self) -> None:
        """Close the wrapped file, after any background flush has ended (no flush is left
        running on a file about to be closed or removed)."""
        if self._raw.closed:
            return
        try:
            if self._thread is not None:
                self._thread.join()
                self._thread = None
        finally:
            self._raw.close()
