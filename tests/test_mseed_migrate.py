"""The one-time move from the first share layout to the depth-bounded one, on a real folder.

Inputs we did not make: ObsPy's shipped MiniSEED files (``gaps.mseed`` starts
2007-12-31T23:59:59.915Z; ``test.mseed`` starts 2003-05-29T02:13:22.043Z), placed where the
first layout put blobs' MiniSEED files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import obspy

from shared_code.mseed_migrate import main, plan
from shared_code.share_layout import MSEED_DEPTH, blob_paths, ensure_layout

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data"
DEEP_BLOB = "snorre/l1/l2/l3/l4/l5/l6/f.sgy"


def _old_share(tmp_path: Path) -> Path:
    share = tmp_path / "share"
    ensure_layout(share)
    old = {
        "mseed/snorre/l1/l2/l3/l4/l5/l6/f.sgy.mseed": DATA / "gaps.mseed",  # 7 levels deep
        "mseed/snorre/a.sgy.mseed": DATA / "test.mseed",
        "mseed/grane/2026/11/23/Line 4.sgy~0123456789.mseed": DATA / "test.mseed",
        "mseed/snorre/_seams/0123abcd/42-left.mseed": DATA / "gaps.mseed",  # unchanged place
    }
    for rel, source in old.items():
        (share / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, share / rel)
    return share


def _tree(share: Path) -> dict[str, bytes]:
    return {p.relative_to(share).as_posix(): p.read_bytes()
            for p in sorted(share.rglob("*")) if p.is_file()}  # fmt: skip


def test_dry_run_changes_nothing_and_apply_moves_every_file_within_reach(
    tmp_path: Path, capsys
) -> None:
    share = _old_share(tmp_path)
    before = _tree(share)
    assert main(["--share", str(share)]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing changed: 3 to move" in out
    assert _tree(share) == before

    mtime = (share / "mseed/snorre/a.sgy.mseed").stat().st_mtime_ns
    assert main(["--share", str(share), "--apply"]) == 0
    after = _tree(share)
    # The deep blob's file is where the pipeline now writes it: its data's first day.
    deep = f"mseed/snorre/2007/365/{blob_paths(DEEP_BLOB).folded}.mseed"
    assert deep == "mseed/snorre/2007/365/l1~~l2~~l3~~l4~~l5~~l6~~f.sgy.mseed"
    expected = {
        deep: before["mseed/snorre/l1/l2/l3/l4/l5/l6/f.sgy.mseed"],
        "mseed/snorre/2003/149/a.sgy.mseed": before["mseed/snorre/a.sgy.mseed"],
        "mseed/grane/2003/149/2026~~11~~23~~Line 4.sgy~0123456789.mseed":
            before["mseed/grane/2026/11/23/Line 4.sgy~0123456789.mseed"],
        "mseed/snorre/_seams/0123abcd/42-left.mseed":
            before["mseed/snorre/_seams/0123abcd/42-left.mseed"],
    }  # fmt: skip
    assert {k: v for k, v in after.items() if k.startswith("mseed/")} == expected
    assert all(rel.count("/") == 1 + MSEED_DEPTH for rel in expected)
    assert (share / "mseed/snorre/2003/149/a.sgy.mseed").stat().st_mtime_ns == mtime
    assert not (share / "mseed/snorre/l1").exists()  # emptied folders are gone
    assert not (share / "mseed/grane/2026").exists()
    assert (share / "mseed/snorre").is_dir() and (share / "mseed/grane").is_dir()

    capsys.readouterr()
    assert main(["--share", str(share), "--apply"]) == 0  # idempotent
    assert "applied: 0 to move, 0 duplicates" in capsys.readouterr().out
    assert _tree(share) == after


def test_duplicates_are_removed_conflicts_and_unreadable_files_stay(tmp_path: Path) -> None:
    share = _old_share(tmp_path)
    # The deep blob was converted again since the upgrade: the same bytes at the new path.
    new = share / "mseed/snorre/2007/365/l1~~l2~~l3~~l4~~l5~~l6~~f.sgy.mseed"
    new.parent.mkdir(parents=True)
    shutil.copy2(DATA / "gaps.mseed", new)
    # a.sgy's new path holds other data: neither is touched.
    other = share / "mseed/snorre/2003/149/a.sgy.mseed"
    other.parent.mkdir(parents=True)
    other.write_bytes(b"other")
    junk = share / "mseed/snorre/notes/readme.mseed"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not MiniSEED at all")
    actions = {m.source: m.action for m in plan(share)}
    assert actions == {
        "mseed/grane/2026/11/23/Line 4.sgy~0123456789.mseed": "move",
        "mseed/snorre/a.sgy.mseed": "conflict",
        "mseed/snorre/l1/l2/l3/l4/l5/l6/f.sgy.mseed": "duplicate",
        "mseed/snorre/notes/readme.mseed": "unreadable",
    }
    assert main(["--share", str(share), "--apply"]) == 1
    assert not (share / "mseed/snorre/l1").exists()
    assert new.read_bytes() == (DATA / "gaps.mseed").read_bytes()
    assert other.read_bytes() == b"other"
    assert (share / "mseed/snorre/a.sgy.mseed").read_bytes() == (DATA / "test.mseed").read_bytes()
    assert junk.read_bytes() == b"not MiniSEED at all"


def test_module_entry_point_refuses_a_folder_without_mseed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "shared_code.mseed_migrate", "--share", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "is not a folder" in proc.stderr
