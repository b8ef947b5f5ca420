"""SEG-Y sample format codes (binary header bytes 3225-3226) and their decoding.

Code: stored type -> type the readers return (SEG-Y rev 2.0, "Data sample format code")::

     1  4-byte IBM hexadecimal float  -> float32, exact: correctly rounded (see below)
     2  4-byte two's complement int   -> int32
     3  2-byte two's complement int   -> int16
     5  4-byte IEEE float             -> float32
     6  8-byte IEEE float             -> float64
     8  1-byte two's complement int   -> int8
     9  8-byte two's complement int   -> float64
    10  4-byte unsigned int           -> float64
    11  2-byte unsigned int           -> uint16
    12  8-byte unsigned int           -> float64
    16  1-byte unsigned int           -> uint8

Integers whose range fits int32 stay integers: they are decimated to int32 counts and
written Steim-2. Codes 9, 10 and 12 exceed the int32 that miniSEED's integer encodings and
the DSP engine's integer output carry (the engine would clip silently), so they are read as
float64 (exact for uint32; int64/uint64 magnitudes above 2**53 are rounded to the nearest
float64, a relative error <= 2**-53, far below the float32 the decimated file holds). Those and
code 6 are decimated as floats and written as IEEE float32 (miniSEED FLOAT32, SEG-Y code 5);
a file already at the target rate is passed through as float64 (SEG-Y code 6).
Refused: 4 (fixed point with gain, withdrawn in rev 1), 7 and 15 (3-byte integers).

IBM floats: value = (-1)**s * F * 16**(e - 64) / 2**24 with s the top bit, e the next 7
bits and F the 24-bit fraction, normalised (leading hex digit 1..15) or not (leading digit 0,
F as small as 1). F * 2**(4*(e-64) - 24) has a 24-bit mantissa and a binary exponent in
-280..228, so it is exact in float64, and the one float64 -> float32 cast rounds it correctly
(nearest, ties to even). Magnitudes beyond float32 (from IBM exponent 0x61 = 16**33 on, and
the top of 0x60) become +/-inf; those at most half the smallest float32 subnormal (2**-150,
a tie to even) become +/-0; in between, subnormals as IEEE rounds them. A zero fraction
gives +/-0 by the sign bit. (segyio's and SU's table method assumes a normalised fraction
and is wrong when the leading hex digit is 0: it reads 0x41010000 as 0.53125, not 0.0625.)
"""

from __future__ import annotations

import sys

import numpy as np

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
#: Names of the codes, for messages.
FORMAT_NAMES = {
    1: "4-byte IBM float",
    2: "4-byte int",
    3: "2-byte int",
    4: "4-byte fixed point with gain (obsolete)",
    5: "4-byte IEEE float",
    6: "8-byte IEEE float",
    7: "3-byte int",
    8: "1-byte int",
    9: "8-byte int",
    10: "4-byte unsigned int",
    11: "2-byte unsigned int",
    12: "8-byte unsigned int",
    15: "3-byte unsigned int",
    16: "1-byte unsigned int",
}
#: Stored sample type (numpy kind and size, byte order apart) of each decoded code; IBM
#: floats are read as 32-bit words and converted.
STORED = {
    1: "u4",
    2: "i4",
    3: "i2",
    5: "f4",
    6: "f8",
    8: "i1",
    9: "i8",
    10: "u4",
    11: "u2",
    12: "u8",
    16: "u1",
}
#: The codes this reader decodes.
SUPPORTED_FORMATS = {c: FORMAT_NAMES[c] for c in STORED}
#: Sample type a reader returns for each supported code (see the module docstring).
DECODED: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.int32),
    3: np.dtype(np.int16),
    5: np.dtype(np.float32),
    6: np.dtype(np.float64),
    8: np.dtype(np.int8),
    9: np.dtype(np.float64),
    10: np.dtype(np.float64),
    11: np.dtype(np.uint16),
    12: np.dtype(np.float64),
    16: np.dtype(np.uint8),
}

#: Sign and exponent byte of an IBM word -> (-1)**s * 2**(4*(e-64) - 24): exact in float64.
_IBM_SCALE = np.array(
    [(-1.0 if b & 0x80 else 1.0) * 2.0 ** (4 * ((b & 0x7F) - 64) - 24) for b in range(256)]
)
_NATIVE_BIG = sys.byteorder == "big"
#: Words converted per step: the float64 temporaries (256 KiB) stay in cache.
_IBM_STEP = 1 << 15


def stored_dtype(code: int, endian: str) -> np.dtype:
    """The stored sample type of a supported code in a file of this byte order."""
    return np.dtype((">" if endian == "big" else "<") + STORED[code])


def ibm_to_float32(words: np.ndarray) -> np.ndarray:
    """IBM System/360 single-precision floats (uint32 words, any byte order) as float32,
    correctly rounded (see the module docstring)."""
    words = np.asarray(words)
    if words.dtype.kind != "u" or words.dtype.itemsize != 4:
        raise TypeError(f"IBM floats are 32-bit unsigned words, got {words.dtype}")
    flat = np.ascontiguousarray(words).reshape(1, -1)
    out = np.empty(flat.shape, np.float32)
    ibm_into(flat, out)
    return out.reshape(words.shape)


def ibm_into(words: np.ndarray, out: np.ndarray) -> None:
    """Convert 2-D IBM words (rows may be strided, each row contiguous) into float32 ``out``."""
    if words.strides[-1] != words.itemsize:
        words = np.ascontiguousarray(words)
    n_rows, width = words.shape
    big = words.dtype.byteorder == ">" or (words.dtype.byteorder in "=|" and _NATIVE_BIG)
    top = 0 if big else 3  # the sign-and-exponent byte of each word
    with np.errstate(over="ignore", under="ignore"):
        if width >= _IBM_STEP:
            for r in range(n_rows):
                for c in range(0, width, _IBM_STEP):
                    part = (slice(r, r + 1), slice(c, c + _IBM_STEP))
                    _ibm_part(words[part], out[part], top)
        else:
            step = max(1, _IBM_STEP // max(width, 1))
            for r in range(0, n_rows, step):
                _ibm_part(words[r : r + step], out[r : r + step], top)


def _ibm_part(words: np.ndarray, out: np.ndarray, top: int) -> None:
    fraction = np.bitwise_and(words, np.uint32(0x00FFFFFF), dtype=np.uint32)
    scale = _IBM_SCALE.take(words.view(np.uint8)[:, top::4])
    # F * scale is exact in float64; the cast into float32 ``out`` is the one rounding.
    np.multiply(fraction, scale, out=out, casting="unsafe")


def decode_into(code: int, stored: np.ndarray, out: np.ndarray) -> None:
    """Decode 2-D stored samples of ``code`` (file byte order) into ``out`` (:data:`DECODED`)."""
    if code == 1:
        ibm_into(stored, out)
    else:
        # numpy swaps bytes and converts; int64/uint64 -> float64 rounds to nearest.
        out[...] = stored
