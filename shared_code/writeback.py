"""Files flushed to their device (or file server) while they are still being written.

A decimated file or a MiniSEED file is written a chunk at a time over the whole run of a
stage and must be durable (fsync) before it is renamed into place. Left to the end, that
fsync waits for every byte at once: on a local disk ~40 ms per file set here; on the Azure
Files mount, the upload of the whole file. :class:`EarlyWriteback` starts the flush in a
background thread every :data:`WRITEBACK_BYTES`, so the device works while the stage computes
and the final fsync finds little left to do. Durability is unchanged: the caller still
fsyncs after :meth:`EarlyWriteback.finish`.
"""

from __future__ import annotations

import os
import threading
from typing import BinaryIO

#: Bytes written between background flushes.
WRITEBACK_BYTES = 8 << 20
#: fdatasync where the platform has it (Linux); macOS's Python has only fsync.
_datasync = getattr(os, "fdatasync", os.fsync)


class EarlyWriteback:
    """Wraps a binary file open for writing: ``write`` passes through, and every
    :data:`WRITEBACK_BYTES` a background thread ``fdatasync``\\ s what was written so far (one
    flush at a time). Call :meth:`finish` before the final fsync: it waits for the flush in
    progress and raises its error, if any."""

    def __init__(self, raw: BinaryIO, every: int = WRITEBACK_BYTES) -> None:
        self._raw = raw
        self._every = every
        self._unflushed = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
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

    def finish(self) -> None:
        """Wait for the background flush; raise its error. The file stays open."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
