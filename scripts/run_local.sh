#!/usr/bin/env bash
# Set up, then run the whole pipeline locally on sample data (Azurite + a directory share).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m scripts.run_local "$@"
