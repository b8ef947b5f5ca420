"""Which OpenBLAS CPU kernels this machine can run, and which one numpy is using.

The float32 sums of the decimator depend on the kernel OpenBLAS picks for the CPU, so the test
command runs the DSP and seam tests once more under each kernel the CPU can execute
(``OPENBLAS_CORETYPE``): a result that holds on an AVX-512 machine must hold on AVX2 and AVX
ones too. A kernel is listed only when the CPU has the instructions it uses (OpenBLAS's
``driver/others/dynamic.c``: Sandybridge needs AVX, Haswell AVX2 and FMA3, SkylakeX AVX-512
F/CD/BW/DQ/VL); forcing one the CPU lacks would crash or fall back silently.

    python scripts/blas_kernels.py runnable   # one kernel name per line
    python scripts/blas_kernels.py current    # the kernel numpy's OpenBLAS runs now
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

#: OPENBLAS_CORETYPE name -> /proc/cpuinfo flags its kernels need.
KERNELS: dict[str, frozenset[str]] = {
    "SkylakeX": frozenset({"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}),
    "Haswell": frozenset({"avx2", "fma"}),
    "Sandybridge": frozenset({"avx"}),
}


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo); empty where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def runnable() -> list[str]:
    """Kernels whose instructions this CPU has, widest first."""
    flags = cpu_flags()
    return [name for name, needs in KERNELS.items() if needs <= flags]


def current() -> str:
    """The kernel numpy's bundled OpenBLAS chose (or was told to use), or "unknown"."""
    import numpy

    libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libs, "libscipy_openblas*.so*")):
        lib = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename"):
            getter = getattr(lib, symbol, None)
            if getter is not None:
                getter.restype = ctypes.c_char_p
                return str(getter().decode())
    return "unknown"


def main(argv: list[str]) -> int:
    if argv[1:] == ["runnable"]:
        print("\n".join(runnable()))
        return 0
    if argv[1:] == ["current"]:
        print(current())
        return 0
    print("usage: python scripts/blas_kernels.py runnable|current", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
