"""``python -m shared_code.cli process``: the functions' code path on local files."""

import subprocess
import sys
from pathlib import Path

from obspy import read

from scripts.sample_data import array_record, write_segy
from shared_code.cli import main
from tests.share_helpers import mseed_file

ROOT = Path(__file__).resolve().parent.parent


def test_process_good_and_bad_files(tmp_path: Path, capsys) -> None:
    good = write_segy(tmp_path / "good.sgy", array_record(n_stations=2, seconds=4.0), 1000.0)
    bad = tmp_path / "bad.sgy"
    bad.write_bytes(b"hello, not seismic" * 50)
    out = tmp_path / "share"
    code = main(["process", "--field", "grane", "--output", str(out), str(good), str(bad)])
    captured = capsys.readouterr()
    assert code == 1
    assert "good.sgy" in captured.out and "1000 -> 100 Hz" in captured.out
    (line,) = captured.err.strip().splitlines()
    assert "bad.sgy" in line and "FAILED" in line
    st = read(str(mseed_file(out, "grane/good.sgy")))
    assert len(st) == 8 and st[0].stats.sampling_rate == 100.0
    assert st[0].id == "XG.G0001.00.EPZ"
    assert list((out / "failed").rglob("*.json"))
    assert (out / "decimated").is_dir()


def test_target_rate_override_and_passthrough(tmp_path: Path, capsys) -> None:
    good = write_segy(
        tmp_path / "g.sgy", array_record(n_stations=1, seconds=2.0, rate_hz=200.0), 200.0
    )
    out = tmp_path / "share"
    assert (
        main(
            [
                "process",
                "--field",
                "snorre",
                "--target-rate",
                "250",
                "--output",
                str(out),
                str(good),
            ]
        )
        == 0
    )
    assert "passed through" in capsys.readouterr().out
    st = read(str(mseed_file(out, "snorre/g.sgy")))
    assert st[0].stats.sampling_rate == 200.0


def test_module_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shared_code.cli", "process", "--field", "nowhere", "--output",
         str(tmp_path), "x"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "unknown field 'nowhere'" in proc.stderr
