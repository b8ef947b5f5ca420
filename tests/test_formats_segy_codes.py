"""Every SEG-Y sample format code we read, in both byte orders, against segyio.

Files are made by segyio (``spec.format = code``) holding known values including each
type's extremes; our reader must return segyio's own decoding, in the documented type
(:mod:`shared_code.formats.segy_samples`). 64-bit integers are compared with Python's
correctly rounded ``float(int)``, not with a numpy cast.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import FormatError, segy

#: Code -> (segyio's sample type, our decoded type).
CODES = {
    1: (np.float32, np.float32),
    2: (np.int32, np.int32),
    3: (np.int16, np.int16),
    5: (np.float32, np.float32),
    6: (np.float64, np.float64),
    8: (np.int8, np.int8),
    9: (np.int64, np.float64),
    10: (np.uint32, np.float64),
    11: (np.uint16, np.uint16),
    12: (np.uint64, np.float64),
    16: (np.uint8, np.uint8),
}
N_TRACES, N_SAMPLES, INTERVAL_US = 5, 64, 1000


def _values(stored: type, seed: int) -> np.ndarray:
    """Random values of the type with its extremes (and 2**53 + 1, not a float64) in."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(stored)
    if dtype.kind == "f":
        data = rng.normal(0, 1e3, (N_TRACES, N_SAMPLES)).astype(dtype)
        info = np.finfo(dtype)
        extremes = [info.max, info.min, info.tiny, -info.tiny, 0.0, 1.0, -1.0]
        if stored is np.float32 and dtype.itemsize == 4:
            extremes[:2] = [2.0**100, -(2.0**100)]  # IBM covers these exactly
    else:
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max, (N_TRACES, N_SAMPLES), dtype=dtype, endpoint=True)
        extremes = [info.min, info.max, 0, 1, info.max - 1]
        if dtype.itemsize == 8:
            extremes += [2**53 + 1, info.max // 3]
    data[0, : len(extremes)] = extremes
    return data


def _make(path: Path, code: int, endian: str, seed: int = 0) -> np.ndarray:
    import segyio

    stored = CODES[code][0]
    data = _values(stored, seed)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.endian = (
        code,
        list(range(N_SAMPLES)),
        N_TRACES,
        endian,
    )
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: INTERVAL_US, segyio.BinField.SEGYRevision: 2})
        for i in range(N_TRACES):
            f.header[i] = {
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: INTERVAL_US,
                segyio.TraceField.TRACE_SEQUENCE_FILE: i + 1,
            }
            f.trace[i] = data[i]
    return data


def _segyio_decoded(path: Path, endian: str) -> np.ndarray:
    import segyio

    with segyio.open(str(path), ignore_geometry=True, endian=endian) as f:
        return f.trace.raw[:]


@pytest.mark.parametrize("endian", ["big", "little"])
@pytest.mark.parametrize("code", sorted(CODES))
def test_code_reads_as_segyio_decodes(tmp_path: Path, code: int, endian: str) -> None:
    path = tmp_path / f"f{code}.sgy"
    _make(path, code, endian, seed=code)
    reference = _segyio_decoded(path, endian)
    assert reference.dtype == np.dtype(CODES[code][0])
    recording = formats.read(path, "raw/x.sgy")
    [block] = recording.blocks
    assert block.data.dtype == np.dtype(CODES[code][1])
    assert block.sampling_rate == 1e6 / INTERVAL_US
    if reference.dtype.kind in "iu" and reference.dtype.itemsize == 8:
        expected = np.array([[float(int(v)) for v in row] for row in reference])
        assert expected[0, 5] == 2.0**53  # 2**53 + 1 rounds (to even) as documented
    else:
        expected = reference
    if code == 1:  # segyio normalises the words it writes: its decoding is exact for them
        np.testing.assert_array_equal(block.data.view(np.uint32), expected.view(np.uint32))
    else:
        np.testing.assert_array_equal(block.data, expected)
    assert recording.file_headers["endian"] == endian


@pytest.mark.parametrize("code", [6, 8, 9, 10, 11, 12, 16])
def test_streaming_paths(tmp_path: Path, code: int) -> None:
    """rows, columns, edges and stored_rows give the decoded values, never raw 64-bit or
    unsigned words that a consumer would take for counts."""
    path = tmp_path / "t.sgy"
    _make(path, code, "little", seed=1)
    whole = formats.read(path).blocks[0].data
    with formats.open_source(path) as source:
        [block] = source.blocks
        np.testing.assert_array_equal(block.rows(1, 4), whole[1:4])
        np.testing.assert_array_equal(block.columns(10, 20), whole[:, 10:20])
        head, tail = block.edges(8)
        np.testing.assert_array_equal(head, whole[:, :8])
        np.testing.assert_array_equal(tail, whole[:, -8:])
        stored = block.stored_rows(0, N_TRACES)
        assert (stored.dtype.kind, stored.dtype.itemsize) == (
            whole.dtype.kind,
            whole.dtype.itemsize,
        )
        np.testing.assert_array_equal(stored, whole)


@pytest.mark.parametrize("code", [4, 7, 15])
def test_unsupported_codes_are_refused(tmp_path: Path, code: int) -> None:
    path = tmp_path / "t.sgy"
    _make(path, 2, "big")
    raw = bytearray(path.read_bytes())
    raw[3224:3226] = struct.pack(">H", code)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError) as err:
        formats.read(path, "raw/f/x.sgy")
    message = str(err.value)
    assert message.startswith(f"raw/f/x.sgy: unsupported SEG-Y sample format code {code} (")
    assert "binary header bytes 3225-3226 (big-endian)" in message
    assert "supported: 1 (4-byte IBM float)" in message


def test_passthrough_of_float64_is_lossless(tmp_path: Path) -> None:
    """A float64 file already at the target rate is written as SEG-Y code 6: every bit kept."""
    path = tmp_path / "t.sgy"
    data = _make(path, 6, "big")
    with formats.open_source(path, "x") as source:
        layout = formats.Layout(source.format, source.source, source.file_headers, source.blocks)
        assert formats.output_format_for(layout) == "SEGY"
        planned = segy.plan_layout(layout)
        assert isinstance(planned, segy.Plan) and planned.format_code == 6
        out = tmp_path / "out.sgy"
        with formats.open_writer("SEGY", out, layout) as writer:
            writer.write_rows(0, 0, source.blocks[0].rows(0, N_TRACES))
    np.testing.assert_array_equal(_segyio_decoded(out, "big"), data)
    assert formats.read(out).blocks[0].data.dtype == np.float64


def test_su_refuses_float64(tmp_path: Path) -> None:
    from shared_code.formats import su

    path = tmp_path / "t.sgy"
    _make(path, 6, "big")
    layout = formats.layout_of(formats.read(path))
    assert not su.can_write_layout(layout)
    assert "float32" in str(segy.plan_layout(layout, floats_only=True))


@pytest.mark.parametrize(("code", "dtype"), [(10, "f"), (11, "i"), (12, "f")])
def test_end_to_end_decimation(tmp_path: Path, code: int, dtype: str) -> None:
    """A segyio-made file of an unsigned or 64-bit code through the CLI's ``process``
    (decimate, then miniSEED): floats as FLOAT32, small integers as Steim-2 int32."""
    import segyio
    from obspy import read

    from shared_code.cli import main

    n_samples, interval = 4000, 1000  # 4 s at 1 kHz -> 100 Hz
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount, spec.endian = code, list(range(n_samples)), 3, "big"
    t = np.arange(n_samples) / 1000.0
    # Offsets beyond int32 for codes 10 and 12; amplitudes well above float32's step there
    # (2**8 at 3e9, 2**10 at 1e10).
    offset = {10: 3_000_000_000, 11: 30_000, 12: 10**10}[code]
    amplitude = {10: 1e5, 11: 1e3, 12: 1e6}[code]
    tone = amplitude * np.sin(2 * np.pi * 5.0 * t)  # 5 Hz: in the passband
    path = tmp_path / "in.sgy"
    with segyio.create(str(path), spec) as f:
        f.bin.update({segyio.BinField.Interval: interval})
        for i in range(3):
            f.header[i] = {
                segyio.TraceField.TRACE_SAMPLE_INTERVAL: interval,
                segyio.TraceField.YearDataRecorded: 2024,
                segyio.TraceField.DayOfYear: 65,
            }
            f.trace[i] = (offset + tone).astype(f.dtype)
    share = tmp_path / "share"
    assert main(["process", "--field", "grane", "--output", str(share), str(path)]) == 0
    stream = read(str(next((share / "mseed").rglob("*.mseed"))))
    assert len(stream) == 3
    for trace in stream:
        assert trace.stats.sampling_rate == 100.0
        assert trace.data.dtype.kind == dtype
        middle = trace.data[50:-50].astype(np.float64)
        # The offset survives decimation (DC gain 1, to the 1e-3 passband ripple); the
        # tone's amplitude too (within 1 %); float32 output adds at most 2**-24 relative.
        ulp = offset * 2**-23
        assert abs(middle.mean() - offset) <= 1e-3 * offset + 0.02 * amplitude + ulp
        half_range = (middle.max() - middle.min()) / 2
        assert abs(half_range - amplitude) <= 0.01 * amplitude + ulp


@pytest.mark.parametrize("code", [8, 11, 16])
def test_passthrough_of_small_integers_is_int32(tmp_path: Path, code: int) -> None:
    """int8, uint16 and uint8 files at the target rate are written as int32 (code 2): every
    value kept, including uint16's 65535."""
    path = tmp_path / "t.sgy"
    data = _make(path, code, "little")
    with formats.open_source(path, "x") as source:
        layout = formats.Layout(source.format, source.source, source.file_headers, source.blocks)
        planned = segy.plan_layout(layout)
        assert isinstance(planned, segy.Plan) and planned.format_code == 2
        out = tmp_path / "out.sgy"
        with formats.open_writer("SEGY", out, layout) as writer:
            writer.write_rows(0, 0, source.blocks[0].rows(0, N_TRACES))
    written = _segyio_decoded(out, "little")
    assert written.dtype == np.int32
    np.testing.assert_array_equal(written, data.astype(np.int64))
