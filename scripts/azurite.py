"""Start and stop the pinned Azurite emulator (``package.json``) for local runs and tests.

Azurite is installed by ``npm ci`` into ``node_modules``; ``node_modules/.bin/azurite`` is a
single process (``npx`` would make three), so stopping it is one signal.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's published development account; a public, well-known key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class AzuriteInstance:
    process: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int
    workdir: Path

    @property
    def connection_string(self) -> str:
        host = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={host}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={host}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={host}:{self.table_port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout_s} s")


def start(workdir: Path | None = None, timeout_s: float = 30.0) -> AzuriteInstance:
    """Start Azurite on free loopback ports with its data in ``workdir`` (default: a temp dir)."""
    if not BINARY.exists():
        raise RuntimeError(f"{BINARY} not found: run 'npm ci' in {ROOT} first")
    workdir = Path(workdir or tempfile.mkdtemp(prefix="azurite-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ports = [_free_port() for _ in range(3)]
    cmd = [
        str(BINARY),
        "--silent",
        "--disableTelemetry",
        # The newest SDKs send an API version newer than Azurite knows.
        "--skipApiVersionCheck",
        "--location",
        str(workdir),
        "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
    ]  # fmt: skip
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    instance = AzuriteInstance(process, ports[0], ports[1], ports[2], workdir)
    try:
        for port in ports:
            _wait_for_port(port, process, timeout_s)
    except Exception:
        instance.stop()
        raise
    return instance


@contextlib.contextmanager
def running(workdir: Path | None = None) -> Iterator[AzuriteInstance]:
    """Azurite for the duration of a ``with`` block; its data dir is removed if it was temporary."""
    temporary = workdir is None
    instance = start(workdir)
    try:
        yield instance
    finally:
        instance.stop()
        if temporary:
            shutil.rmtree(instance.workdir, ignore_errors=True)


if __name__ == "__main__":
    with running(Path(os.environ.get("AZURITE_DIR", ROOT / "local" / "azurite"))) as az:
        print(az.connection_string, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            az.process.wait()
