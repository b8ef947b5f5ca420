#!/usr/bin/env bash
# The test command: set up, then lint, format check, type check, tests, infrastructure checks
# and the runtime import check. Starts and stops Azurite itself (pytest fixture).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff check"
.venv/bin/ruff check .
echo "==> ruff format --check"
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy
echo "==> runtime import check"
bash scripts/check_import.sh
if [ -f scripts/check_infra.sh ]; then
  echo "==> infrastructure checks"
  bash scripts/check_infra.sh
fi
bash scripts/test_blas_kernels.sh
echo "==> pytest (OpenBLAS kernel: $(.venv/bin/python scripts/blas_kernels.py current))"
.venv/bin/python -m pytest "$@"
