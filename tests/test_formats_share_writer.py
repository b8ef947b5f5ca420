"""Every writer writes through the share's atomic writer, as the pipeline uses it.

The pipeline hands writers the object ``share_layout.atomic_writer`` yields (the early
writeback wrapper), never a plain file or a BytesIO; library writers test the type of what they
get (ObsPy's SAC writer accepts only a path or an ``io.BufferedIOBase``). Each format here is
written both ways the pipeline writes (``formats.open_writer`` fed rows in chunks, as
``decimate_file``; ``formats.write``) and read back.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.share_layout import atomic_writer, resolve
from shared_code.waveforms import Block, Recording, TraceMeta
from shared_code.writeback import EarlyWriteback
from tests import formats_helpers as fh
from tests.test_formats_write import assert_same, decimated


def _obspy(fmt: str, ids: list[str], dtype: str) -> Callable[[Path], Recording]:
    def build(path: Path) -> Recording:
        fh.obspy_stream(ids, 1000, 1000.0, dtype).write(str(path), format=fmt)
        return formats.read(path)

    return build


def _segy(path: Path) -> Recording:
    fh.make_segy(path, 5, 400, 1000.0, "int32", endian="little")
    return formats.read(path)


def _su(path: Path) -> Recording:
    fh.make_su(path, 5, 400, 1000.0, endian="big")
    return formats.read(path)


def _odd_ids(path: Path) -> Recording:
    """Two blocks of traces with ids miniSEED cannot carry (a WIN channel, a repeated id)."""
    rng = np.random.default_rng(3)
    first = [TraceMeta(0, channel="a100"), TraceMeta(1, channel="a101")]
    second = [TraceMeta(2, "XX", "STA", "", "HHZ"), TraceMeta(3, "XX", "STA", "", "HHZ")]
    blocks = [
        Block(rng.integers(-9999, 9999, (2, 1000)).astype(np.int32), 1000.0, fh.START_NS, first),
        Block(rng.integers(-9999, 9999, (2, 1000)).astype(np.int32), 1000.0, fh.START_NS, second),
    ]
    return Recording("WIN", blocks, "odd")


#: Format -> (input file builder, sample type the format stores).
INPUTS: dict[str, tuple[Callable[[Path], Recording], type]] = {
    "SEGY": (_segy, np.int32),
    "SU": (_su, np.float32),
    "SAC": (_obspy("SAC", ["XX.A.00.HHZ"], "float32"), np.float32),
    "GSE2": (_obspy("GSE2", ["XX.A..HHZ", "XX.B..HHZ"], "int32"), np.int32),
    "MSEED": (_obspy("MSEED", ["XX.A.00.HHZ", "XX.B.00.HHZ", "XX.C.00.HHZ"], "int32"), np.int32),
    "CCSW": (_odd_ids, np.int32),
}


def test_every_writer_is_covered() -> None:
    assert set(INPUTS) == set(formats.EXTENSIONS) - {"OBSPY"}  # OBSPY writes miniSEED


@pytest.mark.parametrize("fmt", INPUTS)
def test_every_writer_writes_through_the_share_writer(share: Path, fmt: str) -> None:
    build, stored = INPUTS[fmt]
    small = decimated(build(share.parent / "in"), 4)
    assert formats.output_format(small) == fmt
    layout = formats.layout_of(small)
    assert formats.output_format_for(layout) == fmt
    streamed, whole = f"decimated/f/streamed.{fmt}", f"decimated/f/whole.{fmt}"
    with (
        atomic_writer(share, streamed) as (_tmp, out),
        formats.open_writer(fmt, out, layout) as writer,
    ):
        assert isinstance(out, io.BufferedIOBase)
        for i, block in enumerate(small.blocks):
            for start in range(0, len(block.traces), 2):  # chunks, as decimate_file writes
                writer.write_rows(i, start, block.data[start : start + 2])
    with atomic_writer(share, whole) as (_tmp, out):
        formats.write(small, out, fmt)
    for relative in (streamed, whole):
        back = formats.read(resolve(share, relative), relative)
        assert back.format == fmt
        assert_same(small, back, stored)
        if fmt == "CCSW":  # the codes are the checked ids; the indices matter as much
            indices = [t.index for b in back.blocks for t in b.traces]
            assert indices == [t.index for b in small.blocks for t in b.traces]
    assert not list((share / "staging").iterdir())


def test_the_share_writer_is_a_sequential_binary_file(tmp_path: Path) -> None:
    """What library writers may ask of it: a BufferedIOBase that writes, not one that reads
    or seeks (those raise io.UnsupportedOperation, as the base class defines)."""
    with open(tmp_path / "f", "wb") as raw, EarlyWriteback(raw, every=4) as out:
        assert isinstance(out, io.BufferedIOBase)
        assert (out.writable(), out.readable(), out.seekable()) == (True, False, False)
        assert out.write(memoryview(np.arange(3, dtype="<i4"))) == 12  # bytes, not items
        with pytest.raises(io.UnsupportedOperation):
            out.read(1)
        with pytest.raises(io.UnsupportedOperation):
            out.seek(0)
        out.sync()
        assert not out.closed
    assert out.closed and raw.closed
    assert (tmp_path / "f").read_bytes() == np.arange(3, dtype="<i4").tobytes()
