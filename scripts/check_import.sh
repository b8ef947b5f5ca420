#!/usr/bin/env bash
# An import error in function_app.py shows up in Azure as an app with zero functions: check
# that it imports, and indexes its functions, in a fresh venv holding only requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/runtime-venv
rm -rf "$venv"
echo "==> fresh runtime venv from requirements.txt only"
"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
"$venv/bin/python" - <<'PY'
import time
t0 = time.perf_counter()
import function_app
elapsed = time.perf_counter() - t0
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
print(f"    import function_app: {elapsed:.2f} s; functions: {', '.join(names)}")
assert {"decimate", "convert"} <= set(names), names
PY
