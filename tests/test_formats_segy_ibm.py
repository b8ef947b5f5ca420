"""IBM hexadecimal floats (SEG-Y sample format 1) decoded exactly, for every kind of word.

The reference is exact rational arithmetic (``fractions``) rounded to float32 by hand, in
Python integers: independent of numpy and of the float64 path the decoder takes. Then whole
real files from ObsPy's shipped SEG-Y test data, against ObsPy's own (C) decoder.
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import segy


def _exact(word: int) -> tuple[int, Fraction]:
    """Sign bit and exact magnitude of an IBM word: F * 16**(e - 64) / 2**24."""
    sign, exponent, fraction = word >> 31, (word >> 24) & 0x7F, word & 0x00FFFFFF
    return sign, Fraction(fraction) * Fraction(16) ** (exponent - 64) / 2**24


def _float32_bits(sign: int, value: Fraction) -> int:
    """The float32 nearest ``value`` (ties to even; inf beyond the largest finite, by IEEE
    754 rounding of the unbounded exponent), as its bit pattern."""
    if value == 0:
        return sign << 31
    k = value.numerator.bit_length() - value.denominator.bit_length()
    if Fraction(2) ** k > value:
        k -= 1  # now 2**k <= value < 2**(k + 1)
    q = max(k, -126) - 23  # weight of the last significand bit (subnormals: 2**-149)
    m = round(value / Fraction(2) ** q)  # Fraction rounds half to even
    if m == 1 << 24:
        m, q = m >> 1, q + 1
    if m < 1 << 23:  # subnormal (or zero after rounding)
        bits = m
    else:
        biased = q + 23 + 127
        bits = 0x7F800000 if biased >= 255 else (biased << 23) | (m - (1 << 23))
    return (sign << 31) | bits


def _reference(words: np.ndarray) -> np.ndarray:
    return np.array([_float32_bits(*_exact(int(w))) for w in words], np.uint32)


def _structured_words() -> np.ndarray:
    """Every exponent × leading hex digit (0 = unnormalised, down to F = 1) × sign, with the
    fraction's extremes."""
    fractions = [0, 1, 0x7, 0xFFFF, 0x0FFFFF, 0x0F0001, 0x000800, 0x00FFFF]
    fractions += [d << 20 for d in range(1, 16)] + [(d << 20) | 0x0FFFFF for d in range(16)]
    fractions += [(d << 20) | 0x080000 for d in range(16)] + [(d << 20) | 0x000001 for d in (1, 8)]
    words = [
        (sign << 31) | (exponent << 24) | f
        for sign in (0, 1)
        for exponent in range(128)
        for f in fractions
    ]
    return np.array(words, np.uint32)


def _boundary_words() -> np.ndarray:
    """Words whose exact values sit at the float32 range's edges: around the largest finite
    float32 (2**128 - 2**104) and the rounding point to inf, the smallest normal (2**-126), the
    smallest subnormal (2**-149) and half of it (ties to even towards 0 or 2**-149)."""
    out = []
    for value in (
        Fraction(2**128 - 2**104),
        Fraction(2**128 - 2**103),  # halfway to 2**128: rounds to even, i.e. inf
        Fraction(2**128 - 2**103 - 2**100),
        Fraction(2**128),
        Fraction(1, 2**126),
        Fraction(1, 2**149),
        Fraction(1, 2**150),  # exactly half the smallest subnormal: ties to even (zero)
        Fraction(3, 2**151),  # 0.75 of it: rounds up
        Fraction(3, 2**150),  # 1.5 × smallest subnormal: tie between 1 and 2 → 2
    ):
        for exponent in range(128):
            scaled = value / Fraction(16) ** (exponent - 64) * 2**24
            if scaled.denominator == 1 and 0 < scaled < 2**24:
                for sign in (0, 1):
                    out.append((sign << 31) | (exponent << 24) | int(scaled))
    return np.array(out, np.uint32)


@pytest.mark.parametrize("order", [">", "<", "="])
def test_structured_words_are_exact(order: str) -> None:
    words = np.concatenate([_structured_words(), _boundary_words()])
    got = segy.ibm_to_float32(words.astype(order + "u4"))
    np.testing.assert_array_equal(got.view(np.uint32), _reference(words))


def test_edge_values_by_name() -> None:
    words = np.array(
        [0x41010000, 0x41100000, 0xC1100000, 0x00000000, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF,
         0x00000001, 0x00100000, 0x21100000, 0x60FFFFFF, 0x61100000],
        np.uint32,
    )  # fmt: skip
    got = segy.ibm_to_float32(words)
    assert got[0] == 0.0625  # unnormalised: the old table method gave 0.53125
    assert (got[1], got[2]) == (1.0, -1.0)
    assert got[3] == 0 and not np.signbit(got[3]) and got[4] == 0 and np.signbit(got[4])
    assert got[5] == np.inf and got[6] == -np.inf  # largest IBM magnitudes: beyond float32
    assert got[7] == 0 and got[8] == 0  # 2**-280, 2**-260: below half a subnormal
    assert got[9] == np.float32(2.0**-128) and got[9] < np.finfo(np.float32).tiny  # subnormal
    assert got[10] == np.float32(float(Fraction(0xFFFFFF, 2**24) * 2**128))  # rounds to inf
    assert got[11] == np.inf


def test_large_random_sample_is_exact() -> None:
    rng = np.random.default_rng(20261129)
    words = rng.integers(0, 2**32, size=60_000, dtype=np.uint64).astype(np.uint32)
    got = segy.ibm_to_float32(words.astype(">u4").reshape(300, 200))
    np.testing.assert_array_equal(got.reshape(-1).view(np.uint32), _reference(words))


def test_long_rows_are_converted_in_steps() -> None:
    """Rows longer than one conversion step, strided (a window of a larger buffer)."""
    rng = np.random.default_rng(3)
    words = rng.integers(0x3A000000, 0x47000000, size=(3, 100_003), dtype=np.uint32)
    words[:, ::7] &= np.uint32(0xFF0FFFFF)  # unnormalised fractions too
    window = words[:, 1:-1]
    got = np.empty(window.shape, np.float32)
    from shared_code.formats.segy_samples import ibm_into

    ibm_into(window, got)
    sample = rng.integers(0, window.size, 5000)
    flat = window.reshape(-1)[sample]
    np.testing.assert_array_equal(got.reshape(-1)[sample].view(np.uint32), _reference(flat))


def _obspy_segy_data() -> Path:
    import obspy

    return Path(os.path.dirname(obspy.__file__)) / "io" / "segy" / "tests" / "data"


#: ObsPy's shipped SEG-Y files with IBM samples (format 1), per its data/readme.txt.
IBM_FILES = [
    "00001034.sgy_first_trace",
    "ld0042_file_00018.sgy_first_trace",
    "planes.segy_first_trace",
]


@pytest.mark.parametrize("name", IBM_FILES)
def test_real_ibm_files_equal_obspy(name: str) -> None:
    """Whole files, every sample equal to ObsPy's decoding (its C ``ibm2ieee``)."""
    from obspy import read

    path = _obspy_segy_data() / name
    assert formats.detect(path) == "SEGY"
    recording = formats.read(path, name)
    ours = np.concatenate([b.data for b in recording.blocks])
    stream = read(str(path), format="SEGY")
    theirs = np.array([tr.data for tr in stream])
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours.view(np.uint32), theirs.astype(np.float32).view(np.uint32))
    # And the exact reference, on the raw words of the file.
    raw = path.read_bytes()
    endian = recording.file_headers["endian"]
    n = ours.shape[1]
    words = np.frombuffer(raw, ("<" if endian == "little" else ">") + "u4", n, 3600 + 240)
    np.testing.assert_array_equal(ours[0].view(np.uint32), _reference(words))


def test_real_file_with_unnormalised_words() -> None:
    """00001034.sgy (LIAG, little-endian IBM) holds words with leading hex digit 0: 178 of
    its 2001 samples were off by up to 108× under the table method."""
    path = _obspy_segy_data() / IBM_FILES[0]
    raw = path.read_bytes()
    words = np.frombuffer(raw, "<u4", 2001, 3600 + 240).astype(np.uint32)
    unnormalised = ((words & 0x00F00000) == 0) & ((words & 0x00FFFFFF) != 0)
    assert unnormalised.sum() == 178
    [block] = formats.read(path, "x").blocks
    value = block.data[0, unnormalised]
    sign, magnitude = _exact(int(words[unnormalised][0]))
    assert value[0] == float(magnitude) * (-1) ** sign  # exact in float32: 21 bits or fewer


def test_struct_cross_check_of_one_word() -> None:
    """0x41010000 = +16**1 × 0x010000 / 2**24 = 0.0625 (a worked example, no library)."""
    (word,) = struct.unpack(">I", bytes.fromhex("41010000"))
    assert _exact(word) == (0, Fraction(1, 16))
    assert segy.ibm_to_float32(np.array([word], np.uint32))[0] == 0.0625
