"""SeedLink reaches every MiniSEED file: the share layout's deepest and longest paths against
what SeisComP's mseedscan plugin, started by the stock template from our binding profile, reads.

mseedscan's rules, from its source (SeisComP/seedlink plugins/mseedscan_plugin/mseedscan.c,
``scanfiles``): it starts at level 0 in the ``-d`` directory and enters a sub-folder while its
level is below ``-r`` (default 3), so files up to 3 folders below the root are read; and it
skips any entry whose ``<-d dir>/<relative path>`` is 511 bytes or longer. The model below
applies exactly those two rules to a real directory tree.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import pytest

from shared_code import seiscomp
from shared_code.fields import load_fields
from shared_code.share_layout import (
    MAX_MSEED_PATH_BYTES,
    MSEED,
    MSEED_DEPTH,
    blob_paths,
    seam_mseed_path,
)

ROOT = Path(__file__).resolve().parent.parent
#: 2026-11-23T12:00:00Z in ns.
T = 1_795_435_200 * 10**9


def _mseedscan_reads(root: Path, scan_dir: str, level: int) -> set[str]:
    """Relative paths of the files mseedscan started with ``-d scan_dir -r level`` would read,
    for a tree laid out at ``root`` as it would be at ``scan_dir`` (lengths use ``scan_dir``)."""
    read: set[str] = set()

    def scan(folder: Path, basedir: str, depth: int) -> None:
        for entry in os.scandir(folder):
            name = f"{basedir}/{entry.name}"
            if len(name.encode()) >= seiscomp.MSEEDSCAN_MAX_PATH:
                continue  # "Directory entry name beyond maximum ... skipping"
            if entry.is_dir():
                if depth < level:
                    scan(Path(entry.path), name, depth + 1)
            else:
                read.add(name[len(scan_dir) + 1 :])

    scan(root, scan_dir, 0)
    return read


def _longest_layout_paths() -> list[str]:
    """The deepest and longest share-relative MiniSEED paths the layout can produce."""
    field = "f" * 63  # the longest field name
    deep = f"{field}/" + "/".join(f"level{i}-" + "x" * 30 for i in range(8)) + "/file.sgy"
    converted = blob_paths(deep).mseed(T)
    seam = seam_mseed_path(field, "0" * 64, -(2**63), "right")
    return [converted, seam]


def test_the_longest_paths_reach_the_layouts_bound() -> None:
    converted, seam = _longest_layout_paths()
    # The bound is attained: the layout's longest path is exactly MAX_MSEED_PATH_BYTES.
    assert len(converted.encode()) == MAX_MSEED_PATH_BYTES
    assert len(seam.encode()) <= MAX_MSEED_PATH_BYTES
    for path in (converted, seam):
        assert path.count("/") == 1 + MSEED_DEPTH


def test_mseedscan_on_the_generated_profile_reads_the_deepest_and_longest_files(
    tmp_path: Path,
) -> None:
    out = tmp_path / "seiscomp"
    seiscomp.write(out, seiscomp.render(load_fields(ROOT / "config" / "fields.toml")))
    profile = seiscomp.read_profile(out, seiscomp.PROFILE)
    scan_dir = profile[f"sources.{seiscomp.SOURCE}.dir"]
    assert scan_dir == str(seiscomp.DEFAULT_SHARE_MOUNT / MSEED)
    args = [a.format(dir=scan_dir, state="x.seq") for a in seiscomp.MSEEDSCAN_ARGS]
    level = seiscomp.mseedscan_recursion(args)
    assert "-r" not in args and level == 3  # the stock template's command line: default 3

    share_mseed = tmp_path / "share" / MSEED
    wanted = [PurePosixPath(p).relative_to(MSEED).as_posix() for p in _longest_layout_paths()]
    # What the first layout made of a blob 7 levels deep (snorre/l1/.../l6/f.sgy), for contrast.
    old = "snorre/l1/l2/l3/l4/l5/l6/f.sgy.mseed"
    for rel in (*wanted, old):
        path = share_mseed / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 512)
    read = _mseedscan_reads(share_mseed, scan_dir, level)
    assert set(wanted) <= read
    assert old not in read  # the model is not vacuous: too deep is not read
    longest = max(len(f"{scan_dir}/{rel}".encode()) for rel in wanted)
    assert longest == seiscomp.check_reach(scan_dir) < seiscomp.MSEEDSCAN_MAX_PATH
    text = (out / "etc/key/seedlink" / f"profile_{seiscomp.PROFILE}").read_text()
    assert f"the share layout: {MSEED_DEPTH} levels, at most {longest} bytes" in text


def test_the_vm_applies_the_stock_mseedscan_template() -> None:
    """No custom seedlink template on the VM: the stock command line (MSEEDSCAN_ARGS) holds."""
    cloud_init = (ROOT / "infra" / "cloud-init" / "seiscomp.yaml").read_text()
    assert "templates/mseedscan" not in cloud_init and "mseedscan_plugin" not in cloud_init


def test_a_scan_root_too_long_for_the_layout_is_refused() -> None:
    mount = "/" + "m" * 200
    with pytest.raises(seiscomp.BindingError, match="mseedscan skips paths of 511"):
        seiscomp.render(load_fields(ROOT / "config" / "fields.toml"), f"{mount}/{MSEED}")
