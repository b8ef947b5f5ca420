"""An xz reader with a bound on decoder memory, which ``lzma.LZMAFile`` lacks.

An xz block header declares its LZMA2 dictionary size (up to 4 GiB - 1, The .xz File Format
§5.3.1), and liblzma allocates it as data arrives: a 45 kB file declaring 3 GiB pushed a
process from 31 to 342 MB, and more data pushes it further. Here each stream is decoded by
``lzma.LZMADecompressor(memlimit=MEMLIMIT_BYTES)``, which refuses such a header with
``LZMAError("Memory usage limit exceeded")`` before allocating.

Streams follow CPython 3.11's ``Lib/_compression.py`` ``DecompressReader`` (as used by
``Lib/lzma.py``): concatenated streams are all read; a stream that ends early raises
``EOFError``; data after the last stream that is not an xz stream is ignored. Unlike it,
Stream Padding (null bytes between or after streams, §2.2: "Stream Padding MUST contain only
null bytes") is skipped and the next stream still read, as ``xz -d`` does; LZMAFile reads the
padding as a broken stream and silently drops every stream after it.
"""

from __future__ import annotations

import lzma
from typing import BinaryIO

#: Decoder memory allowed (bytes). ``xz -9``/``-9e``, the largest presets, use a 64 MiB
#: dictionary and need 65 MiB to decode (xz(1), "Memory usage" preset table); 256 MiB admits
#: custom dictionaries up to ~4x that while keeping a hostile header far below the memory of
#: a function instance (1.5 GB on the Consumption plan: Azure Functions service limits, "Max
#: memory (GB per instance)").
MEMLIMIT_BYTES = 256 << 20
#: Header Magic Bytes (§2.1.1.1).
MAGIC = b"\xfd7zXZ\x00"
_READ_BYTES = 1 << 16


class XzReader:
    """Decompressed bytes of the xz file ``raw``, ``read(size)`` at a time."""

    def __init__(self, raw: BinaryIO, memlimit: int = MEMLIMIT_BYTES) -> None:
        self._raw = raw
        self._memlimit = memlimit
        self._decoder = self._new()
        self._eof = False

    def _new(self) -> lzma.LZMADecompressor:
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=self._memlimit)

    def read(self, size: int) -> bytes:
        """Up to ``size`` (> 0) decompressed bytes; ``b""`` at the end.

        Raises ``lzma.LZMAError`` for corrupt data or a stream needing more than the memory
        limit, ``EOFError`` for a truncated stream, ``OSError`` when reading ``raw`` fails.
        """
        while not self._eof:
            if self._decoder.eof:
                block = self._next_stream()
                if not block:
                    self._eof = True
                    break
                self._decoder = self._new()
            elif self._decoder.needs_input:
                block = self._raw.read(_READ_BYTES)
                if not block:
                    raise EOFError("Compressed file ended before the end-of-stream marker")
            else:
                block = b""
            data = self._decoder.decompress(block, size)
            if data:
                return data
        return b""

    def _next_stream(self) -> bytes:
        """The start of the next stream past any Stream Padding, or b"" if there is none."""
        rest = self._decoder.unused_data.lstrip(b"\0")
        while len(rest) < len(MAGIC):
            block = self._raw.read(_READ_BYTES)
            if not block:
                break
            rest = (rest + block) if rest else block.lstrip(b"\0")
        return rest if rest.startswith(MAGIC) else b""
