#!/usr/bin/env bash
# Install everything the local run and the tests need, from the project's own files:
# the Python packages into .venv, the pinned Azurite into node_modules. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
echo "==> installing Python packages (requirements-dev.txt)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
if [ ! -x node_modules/.bin/azurite ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing the pinned Azurite (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
