"""Timing, peak-RSS and JSON helpers shared by the benchmark scripts.

Each contender runs in its own fresh Python process (``run_worker``) so that its peak RSS is
its own and no import or cache of one contender warms another. A worker is a function
``module:function`` that takes keyword arguments (JSON-able) and returns a dict; the harness
adds the process's peak RSS. Progress goes to stderr as it happens.

Usage from a benchmark script::

    from benchmarks import harness
    res = harness.run_worker("benchmarks.bench_decimate:work_ours", {"channels": 2000})
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
_MARK = "@@RESULT@@ "

#: Pin every BLAS / OpenMP pool to one thread: the figures are per core.
SINGLE_THREAD = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

_T_START = time.perf_counter()


def progress(msg: str) -> None:
    """A timestamped progress line on stderr (seconds since the script started)."""
    print(f"[{time.perf_counter() - _T_START:7.1f}s] {msg}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """Current resident set size, MiB (from /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def time_calls(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall times (s) of ``repeat`` calls of ``fn``."""
    times = []
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def run_worker(
    target: str, kwargs: dict[str, Any], *, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``module:function(**kwargs)`` in a fresh single-threaded process; its dict result
    plus ``peak_rss_mb``. The child's stderr (progress) streams through."""
    child_env = {**os.environ, **SINGLE_THREAD, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.harness", target, json.dumps(kwargs)],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARK):
            result: dict[str, Any] = json.loads(line[len(_MARK) :])
            return result
    raise RuntimeError(f"worker {target} failed (exit {proc.returncode}): {proc.stdout[-2000:]}")


def one_cpu() -> int:
    """The CPU the "one core" figures run on: the first this process may use."""
    return min(os.sched_getaffinity(0))


def pin_to_one_cpu(cpu: int | None = None) -> int:
    """Restrict this process (and its future children) to one CPU; returns which."""
    chosen = one_cpu() if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return chosen


#: Runs a command and reports its wait4 rusage. Started with ``python -S`` so that its own
#: address space is small (~10 MiB): a child's ``ru_maxrss`` starts from the RSS of the
#: process that forked it (Linux keeps the pre-exec high-water mark across execve), so a
#: command forked straight from a benchmark that holds big arrays inherits their size.
_LAUNCHER = """
import json, os, sys, time
cmd, out, cpu = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t
with open(out, "w") as f:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "wall": wall, "maxrss_kb": ru.ru_maxrss,
               "utime": ru.ru_utime, "stime": ru.ru_stime}, f)
"""


def run_command(
    cmd: list[str],
    *,
    env: dict[str, str] | None = None,
    cpu: int | None = None,
    cwd: Path = ROOT,
) -> dict[str, Any]:
    """Run a command in a fresh single-threaded process; its wall time, peak RSS and output.

    The peak RSS is the command's own ``ru_maxrss`` (``os.wait4`` on its pid, in a small
    launcher process so that the benchmark's own memory does not leak into it). ``cpu`` pins
    the command to that CPU. Stderr streams through; stdout is returned (last 4000 chars).
    """
    import tempfile

    child_env = {**os.environ, **SINGLE_THREAD, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), child_env.get("PYTHONPATH", "")) if p
    )
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "rusage.json"
        pin = str(-1 if cpu is None else cpu)
        proc = subprocess.run(
            [sys.executable, "-S", "-c", _LAUNCHER, json.dumps(cmd), str(out), pin],
            cwd=cwd,
            env=child_env,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if not out.is_file():
            raise RuntimeError(f"launcher failed (exit {proc.returncode}) for {cmd}")
        usage = json.loads(out.read_text())
    return {
        "cmd": cmd,
        "returncode": usage["rc"],
        "wall_s": round(usage["wall"], 4),
        "peak_rss_mb": round(usage["maxrss_kb"] / 1024.0, 1),
        "user_s": round(usage["utime"], 3),
        "sys_s": round(usage["stime"], 3),
        "stdout_tail": proc.stdout[-4000:],
    }


def hwm_rss_mb() -> float:
    """Peak RSS of this process's address space since its exec (VmHWM), MiB; 0 if unknown.

    Unlike ``ru_maxrss`` it does not start from the RSS of the process that forked this one.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def import_time_s(module: str, repeat: int = 5) -> float:
    """Best wall time (s) of ``import module`` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"import {module} failed: {out.stderr[-2000:]}")
        best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def blas_info() -> dict[str, Any]:
    """Which BLAS kernel numpy runs here, and the env settings that change it.

    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force an older kernel on some machines (wrong
    results or crashes otherwise): numbers measured with and without them differ.
    """
    import numpy as np

    np.ones((2, 2)) @ np.ones((2, 2))  # make sure the BLAS library is loaded
    info: dict[str, Any] = {
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "corename": None,
    }
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if "openblas" in ln and ".so" in ln})
        for lib in libs:
            handle = ctypes.CDLL(lib)
            for sym in (
                "scipy_openblas_get_corename64_",
                "openblas_get_corename64_",
                "openblas_get_corename",
            ):
                fn = getattr(handle, sym, None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    info["corename"] = fn().decode()
                    return info
    except OSError:
        pass
    return info


def machine_info() -> dict[str, Any]:
    import numpy as np

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpus": os.cpu_count(),
        "blas": blas_info(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, creating the folder; atomic via a temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


def _worker_main(argv: list[str]) -> None:
    target, kwargs = argv[0], json.loads(argv[1])
    module, func = target.split(":")
    fn = getattr(importlib.import_module(module), func)
    result = fn(**kwargs)
    # VmHWM, not ru_maxrss: the latter starts from the forking parent's RSS (see _LAUNCHER).
    result["peak_rss_mb"] = round(hwm_rss_mb() or peak_rss_mb(), 1)
    result["ru_maxrss_mb"] = round(peak_rss_mb(), 1)
    print(_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
