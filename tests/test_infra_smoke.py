"""infra/smoke.sh runs end to end against a stand-in az that answers like the deployed pipeline.

The real script runs (bash, the sample writer, the share-layout helper) on a copy of the
repository, with tests/az_stand_in.py as ``az``: an upload to the raw container gets its ledger
row a few polls later, written with the app's own key and column scheme, and the row's MiniSEED
appears on the share one check after the row says ``converted``. No network: SeedLink is a
closed local port (the check is skipped, with a line saying why), a local listener with a
``slinktool`` stand-in, or a minimal local SeedLink server answering INFO STREAMS that ObsPy's
real SeedLink client talks to.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.smoke_helper import SMOKE_START_NS
from shared_code.fields import load_fields
from shared_code.ledger import row_key
from shared_code.share_layout import blob_paths

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = Path(__file__).with_name("az_stand_in.py")
COPIED = ["infra", "config", "shared_code", "scripts"]
DOC = ROOT / "docs" / "deployment.md"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in COPIED:
        shutil.copytree(ROOT / name, copy / name, ignore=ignore)
    return copy


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener() -> Iterator[int]:
    """A local port that accepts TCP connections, as a SeedLink server reached through
    WireGuard does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


#: SeedLink's INFO STREAMS answer (XML, as SeisComP's seedlink sends it) for the sample's station.
INFO_STREAMS = (
    '<?xml version="1.0"?>\n<seedlink software="SeedLink v3.1 (2020.075)" organization="test" '
    'started="2026/11/29 16:00:00.0000"><station name="S0001" network="XS" description="smoke" '
    'begin_seq="000000" end_seq="00000A" stream_check="enabled"><stream location="00" '
    'seedname="DPZ" type="D" begin_time="2000/01/01 00:00:00.0000" '
    'end_time="2000/01/01 00:00:10.0000" begin_recno="0" end_recno="1" gap_check="disabled" '
    'gap_treshold="0"/></station></seedlink>'
)


def _info_packets(xml: str) -> list[bytes]:
    """SeedLink INFO packets: ``SLINFO *`` (more follow) or ``SLINFO  `` (last), each with a
    512-byte MiniSEED record of ASCII text (SeedLink protocol 3, INFO command)."""
    import numpy as np
    from obspy import Stream, Trace

    buf = io.BytesIO()
    text = np.frombuffer(xml.encode(), dtype="|S1")
    Stream([Trace(text, header={"station": "INFO", "channel": "LOG"})]).write(
        buf, format="MSEED", encoding="ASCII", reclen=512
    )
    raw = buf.getvalue()
    records = [raw[i : i + 512] for i in range(0, len(raw), 512)]
    return [(b"SLINFO *" if k < len(records) - 1 else b"SLINFO  ") + r
            for k, r in enumerate(records)]  # fmt: skip


@pytest.fixture
def seedlink_server() -> Iterator[int]:
    """A minimal SeedLink server: answers HELLO and INFO (with :data:`INFO_STREAMS`), then
    closes, for every connection; its port."""
    packets = _info_packets(INFO_STREAMS)

    def session(conn: socket.socket) -> None:
        with conn:
            pending = b""
            while chunk := conn.recv(1024):
                pending += chunk
                while b"\r" in pending:
                    line, pending = pending.split(b"\r", 1)
                    if line.strip() == b"HELLO":
                        conn.sendall(b"SeedLink v3.1 (2020.075) :: SLPROTO:3.1\r\ntest\r\n")
                    elif line.strip().startswith(b"INFO"):
                        conn.sendall(b"".join(packets))
                    elif line.strip() == b"BYE":
                        return

    def serve(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=session, args=(conn,), daemon=True).start()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
        yield int(sock.getsockname()[1])


def run_smoke(
    repo: Path,
    *args: str,
    outcome: str = "converted",
    extra_path: Path | None = None,
    deployed: bool = True,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], list[list[str]], dict[str, object]]:
    """Run smoke.sh with the stand-in az; returns the process, the az calls and az's state."""
    bin_dir = repo.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STAND_IN}" "$@"\n')
    az.chmod(0o755)
    log, state = repo.parent / "az.log", repo.parent / "az-state.json"
    log.unlink(missing_ok=True)
    # A finished deployment (deploy.sh's first step): outputs are readable.
    deployments = {"deployments": [["stand-in"]]} if deployed else {}
    state.write_text(json.dumps({"group": {"name": "rg"}, **deployments}))
    path = [str(bin_dir), *([str(extra_path)] if extra_path else []), os.environ["PATH"]]
    environment = {
        "PATH": os.pathsep.join(path),
        "HOME": str(repo.parent),
        "PYTHON": sys.executable,
        "AZ_LOG": str(log),
        "AZ_STATE": str(state),
        "AZ_USER_TYPE": "user",
        "AZ_USER_NAME": "ops@example.com",
        "AZ_OID": "9e8d7c6b-5a49-4837-a625-140f3e2d1c0b",
        "AZ_SMOKE_OUTCOME": outcome,
        **(env or {}),
    }
    proc = subprocess.run(
        ["bash", str(repo / "infra" / "smoke.sh"), "-g", "rg-ccs", "--interval", "0", *args],
        cwd=repo, env=environment, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc, calls, json.loads(state.read_text())


def commands(calls: list[list[str]]) -> list[str]:
    return [" ".join(a for a in c[:3] if not a.startswith("-")) for c in calls]


def option(call: list[str], name: str) -> str:
    return call[call.index(name) + 1]


def test_converted_file_passes_with_seedlink_skipped(repo: Path, closed_port: int) -> None:
    proc, calls, state = run_smoke(repo, "--seedlink", f"127.0.0.1:{closed_port}")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    names = commands(calls)
    upload = calls[names.index("storage blob upload")]
    # The first configured field, under its smoke folder, in the deployment's raw container.
    field = next(iter(load_fields(repo / "config" / "fields.toml").fields))
    blob = option(upload, "--name")
    assert re.fullmatch(rf"{field}/smoke/smoke-\d{{8}}-\d{{6}}-[0-9a-f]{{6}}\.sgy", blob), blob
    assert option(upload, "--container-name") == "raw"
    assert option(upload, "--account-name") == "ccspassivepabc"
    assert option(upload, "--auth-mode") == "login"
    # Polled until the row appeared and reached converted: no row twice, received, decimated,
    # converted, each poll a line of progress.
    queries = [c for c in calls if commands([c]) == ["storage entity query"]]
    assert len(queries) == 5
    assert "ledger: no row yet" in proc.stdout and "ledger: converted" in proc.stdout
    # The row the script found is the one the app keys by (field, row_key(blob, etag)).
    uploads = state["uploads"]
    assert isinstance(uploads, list) and uploads[0]["name"] == blob
    assert row_key(blob, uploads[0]["etag"])  # the stand-in built the row with the app's key
    # The MiniSEED the row lists, at the share layout's path for the blob, checked until it
    # exists on the deployment's share.
    mseed = blob_paths(blob).mseed(SMOKE_START_NS)
    checks = [c for c in calls if commands([c]) == ["storage file exists"]]
    assert [option(c, "--path") for c in checks] == [mseed, mseed]
    assert {option(c, "--share-name") for c in checks} == {"ccs"}
    assert f"share: ccs/{mseed} exists" in proc.stdout
    assert f"seedlink: skipped (127.0.0.1:{closed_port} not reachable" in proc.stdout
    assert f"passed: {blob} -> {mseed}" in proc.stdout
    # It only reads and uploads: nothing is deployed, deleted or changed.
    assert not {"deployment group create", "storage blob delete"} & set(names)


def test_the_sample_converts_on_the_real_pipeline(tmp_path: Path) -> None:
    """For every configured field, the sample smoke.sh uploads goes through the app's own
    decimate and convert stages (as `python -m shared_code.cli process` runs them) into the
    MiniSEED path the helper expects, with the station the SeedLink check asks for."""
    from scripts.smoke_helper import expect, write_sample
    from shared_code.messages import SourceBlob
    from shared_code.share_layout import ensure_layout
    from shared_code.stages import convert_file, decimate_file

    share = tmp_path / "share"
    ensure_layout(share)
    for name, cfg in load_fields(ROOT / "config" / "fields.toml").fields.items():
        path, network, station = write_sample(cfg, tmp_path / name)
        assert path.stat().st_size < 1_000_000
        blob = f"{name}/smoke/20261129T160000Z-abcdef{path.suffix}"
        source = SourceBlob(url=path.as_uri(), container="raw", name=blob, etag="0x8DD1",
                            event_id="e", event_time="2026-11-29T16:00:00Z")  # fmt: skip
        request, _ = decimate_file(path, blob, share, cfg, source)
        conv = convert_file(request, share, cfg)
        field, mseed, _filter = expect(blob)
        assert (field, conv.output_path) == (name, mseed)
        assert (share / mseed).is_file()
        assert conv.seed_ids
        assert {s.split(".")[:2] == [network, station] for s in conv.seed_ids} == {True}


def test_failed_conversion_prints_the_reason_and_fails(repo: Path) -> None:
    proc, calls, _ = run_smoke(repo, "--no-seedlink", outcome="failed")
    assert proc.returncode == 1
    failed = [line for line in proc.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1
    line = failed[0]
    assert "failed at stage decimate" in line
    assert "sample format code 0 is not defined" in line  # the row's reason, as recorded
    assert "more: az storage entity query --auth-mode login" in line
    assert "storage file exists" not in commands(calls)


def test_timeout_names_the_last_state_and_stops(repo: Path) -> None:
    proc, calls, _ = run_smoke(repo, "--no-seedlink", "--timeout", "6", outcome="stuck")
    assert proc.returncode == 1
    failed = [line for line in proc.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1
    assert "still 'received' after 6s" in failed[0]
    assert "more: az storage entity query" in failed[0]
    assert "... still received" in proc.stdout  # progress while waiting
    assert "storage file exists" not in commands(calls)


def test_seedlink_stream_is_asked_for_when_reachable(repo: Path, listener: int) -> None:
    """With a SeedLink that accepts connections, the stream list (slinktool -Q) must show the
    sample's station; a server that does not list it fails once the time is up."""
    tools = repo.parent / "tools"
    tools.mkdir()
    slinktool = tools / "slinktool"
    streams = repo.parent / "streams.txt"
    slinktool.write_text(f'#!/bin/sh\n[ "$1" = -Q ] || exit 2\ncat "{streams}"\n')
    slinktool.chmod(0o755)
    address = f"127.0.0.1:{listener}"
    # slinktool -Q's format: NET STA LOC CHA TYPE start - end.
    streams.write_text("XS S0001 00 DPZ D 2000/01/01 00:00:00.0000  -  2000/01/01 00:00:10\n")
    proc, _, _ = run_smoke(repo, "--seedlink", address, "--field", "snorre", extra_path=tools)
    assert proc.returncode == 0, proc.stderr
    assert f"seedlink: XS.S0001 is served at {address}" in proc.stdout

    streams.write_text("XS S0002 00 DPZ D 2000/01/01 00:00:00.0000  -  2000/01/01 00:00:10\n")
    args = ("--seedlink", address, "--field", "snorre", "--seedlink-timeout", "1")
    proc, _, _ = run_smoke(repo, *args, extra_path=tools)
    assert proc.returncode == 1
    assert f"SeedLink at {address} lists no stream of XS.S0001" in proc.stderr
    assert f"more: slinktool -Q {address}" in proc.stderr


def test_seedlink_without_slinktool_asks_with_obspy(repo: Path, seedlink_server: int) -> None:
    """Without slinktool the helper asks with ObsPy's SeedLink client (INFO STREAMS) and
    finds the station in the server's answer."""
    address = f"127.0.0.1:{seedlink_server}"
    proc, _, _ = run_smoke(repo, "--seedlink", address, "--field", "snorre",
                           env={"SLINKTOOL": ""})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"at {address} (helper, up to 300s)" in proc.stdout
    assert f"seedlink: XS.S0001 is served at {address}" in proc.stdout

    proc, _, _ = run_smoke(repo, "--seedlink", address, "--field", "grane",
                           "--seedlink-timeout", "1", env={"SLINKTOOL": ""})  # fmt: skip
    assert proc.returncode == 1
    assert f"SeedLink at {address} lists no stream of XG.G0001" in proc.stderr


def test_share_access_by_key_or_by_identity(repo: Path) -> None:
    """Without listKeys the key route fails at once, in one line naming the fix; with
    --share-auth login the checks carry the backup intent Azure Files' OAuth needs."""
    proc, calls, _ = run_smoke(repo, "--no-seedlink", env={"AZ_NO_LIST_KEYS": "1"})
    assert proc.returncode == 1
    # az's own error, then the script's one line.
    failed = [line for line in proc.stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and proc.stderr.splitlines()[-1] == failed[0]
    assert "listKeys/action" in proc.stderr
    assert "cannot read share ccspassivesabc/ccs with --share-auth key" in proc.stderr
    assert "more: az storage file exists --account-name ccspassivesabc" in proc.stderr
    assert commands(calls).count("storage file exists") == 1  # no waiting on a refusal

    proc, calls, _ = run_smoke(repo, "--no-seedlink", "--share-auth", "login",
                               env={"AZ_NO_LIST_KEYS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    checks = [c for c in calls if commands([c]) == ["storage file exists"]]
    assert checks
    assert all(option(c, "--auth-mode") == "login" for c in checks)
    assert all("--enable-file-backup-request-intent" in c for c in checks)


def test_missing_deployment_is_one_line_naming_the_command(repo: Path) -> None:
    proc, calls, _ = run_smoke(repo, "--no-seedlink", deployed=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "no deployment ccs-passive in resource group rg-ccs" in proc.stderr
    assert "more: az deployment group show -g rg-ccs -n ccs-passive" in proc.stderr
    assert "storage blob upload" not in commands(calls)


def test_the_doc_lists_exactly_the_scripts_options() -> None:
    """docs/deployment.md's smoke-test synopsis names every option smoke.sh parses, and no
    other; the checklist's smoke.sh commands use only those."""
    text = DOC.read_text(encoding="utf-8")
    script = (ROOT / "infra" / "smoke.sh").read_text(encoding="utf-8")
    cases = re.findall(r"^    (-[\w-]+(?: \| --[\w-]+)?)\)", script, re.MULTILINE)
    parsed = {opt for case in cases for opt in case.split(" | ")} - {"-h", "--help"}
    synopsis = re.search(r"^`infra/smoke\.sh (-g .*)`$", text, re.MULTILINE)
    assert synopsis, "docs/deployment.md has no infra/smoke.sh synopsis line"
    documented = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", synopsis.group(1)))
    assert documented == parsed - {"--resource-group"}
    for line in re.findall(r"infra/smoke\.sh[^`]*", text):
        for opt in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line):
            assert opt in parsed, f"docs/deployment.md: infra/smoke.sh {opt} is not an option"
