#!/usr/bin/env bash
# The DSP and seam tests once more under every OpenBLAS kernel this CPU can run: float32 sums
# differ between kernels, and CI's CPU may not be the developer's (see scripts/blas_kernels.py).
# Where the machine itself sets OPENBLAS_CORETYPE (some processors need it: older OpenBLAS
# builds compute wrong results or crash on them), it is never overridden: the runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=(tests/test_dsp_*.py tests/test_seams.py tests/test_seams_off_grid.py tests/test_formats_streaming.py)
if [ -n "${OPENBLAS_CORETYPE:-}" ]; then
  echo "==> other OpenBLAS kernels: skipped, this machine sets OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE"
  exit 0
fi
for kernel in $(.venv/bin/python scripts/blas_kernels.py runnable); do
  got=$(OPENBLAS_CORETYPE=$kernel .venv/bin/python scripts/blas_kernels.py current)
  if [ "$got" != "$kernel" ]; then
    echo "==> OpenBLAS kernel $kernel: skipped, OpenBLAS runs $got when asked for it"
    continue
  fi
  echo "==> DSP and seam tests under the OpenBLAS $kernel kernel"
  OPENBLAS_CORETYPE=$kernel .venv/bin/python -m pytest -q -p no:cacheprovider "${tests[@]}"
done
