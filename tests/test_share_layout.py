"""Share paths: derived from the blob name by one function, idempotent, never escaping."""

import re
from pathlib import Path

import pytest

from shared_code.share_layout import (
    MAX_PATH_BYTES,
    BlobNameError,
    atomic_writer,
    blob_key,
    blob_paths,
    resolve,
    write_atomic,
)


def test_same_blob_same_paths() -> None:
    a = blob_paths("snorre/2026/11/23/f.sgy")
    b = blob_paths("snorre/2026/11/23/f.sgy")
    assert a.decimated("segy") == b.decimated("segy") == "decimated/snorre/2026/11/23/f.sgy.segy"
    assert a.mseed == "mseed/snorre/2026/11/23/f.sgy.mseed"
    assert a.blob.field == "snorre"


def test_distinct_blobs_distinct_paths() -> None:
    assert blob_paths("snorre/a.sgy").mseed != blob_paths("snorre/a.segy").mseed
    assert blob_paths("snorre/x/a").mseed != blob_paths("snorre/x_a").mseed


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("snorre/../../etc/passwd", "'..'"),
        ("/snorre/a.sgy", "absolute"),
        ("snorre//a.sgy", "empty"),
        ("snorre/./a.sgy", "'.'"),
        ("snorre/a\x00b.sgy", "control"),
        ("snorre/a\nb.sgy", "control"),
        ("snorre\\..\\a.sgy", "no field folder"),
        ("C:/snorre/a.sgy", "not a valid field name"),
        ("a.sgy", "no field folder"),
        ("snorre/a\u0085b.sgy", "control"),  # C1 control (NEL)
        ("snorre/a\ud800.sgy", "surrogate"),
        ("snorre/" + "d/" * 300 + "f.sgy", "too deep"),
        ("snorre/" + "x" * 1100, "longer than 1024"),
        ("", "empty"),
    ],
)
def test_hostile_names_rejected(name: str, reason: str) -> None:
    with pytest.raises(BlobNameError, match=reason):
        blob_paths(name)


def test_resolve_refuses_escape(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        resolve(tmp_path, "mseed/../../x")
    with pytest.raises(ValueError):
        resolve(tmp_path, "elsewhere/x")
    assert resolve(tmp_path, "mseed/a/b.mseed") == (tmp_path / "mseed/a/b.mseed").resolve()


def test_atomic_write_leaves_no_partial_file(share: Path) -> None:
    target = "mseed/snorre/a.mseed"
    write_atomic(share, target, b"old")
    with pytest.raises(RuntimeError), atomic_writer(share, target) as (tmp, fh):
        fh.write(b"partial")
        assert tmp.parent == share / "staging"
        raise RuntimeError("crash mid-write")
    assert resolve(share, target).read_bytes() == b"old"
    assert not list((share / "staging").iterdir())
    assert not [p for p in (share / "mseed").rglob("*") if p.suffix == ".part"]


def test_a_large_file_is_written_whole_through_background_flushes(share: Path) -> None:
    chunks = [bytes([i]) * (3 << 20) for i in range(7)]  # 21 MiB: two background flushes
    with atomic_writer(share, "decimated/snorre/big.sgy") as (_tmp, fh):
        for chunk in chunks:
            assert fh.write(chunk) == len(chunk)
    assert resolve(share, "decimated/snorre/big.sgy").read_bytes() == b"".join(chunks)


def test_a_failed_background_flush_fails_the_write() -> None:
    """The background fdatasync's error reaches the writer at finish() (here the descriptor
    is a pipe, which cannot be synced: EINVAL from the kernel)."""
    import io
    import os

    from shared_code.writeback import EarlyWriteback

    read_end, write_end = os.pipe()

    class OnPipe(io.BytesIO):
        def fileno(self) -> int:
            return write_end

    try:
        fh = EarlyWriteback(OnPipe(), every=10)
        assert fh.write(b"x" * 20) == 20
        with pytest.raises(OSError):
            fh.finish()
        fh.finish()  # reported once
    finally:
        os.close(read_end)
        os.close(write_end)


# -- names Azure accepts: mapped, deterministic, one-to-one, recognisable -------------------


def _share_key(path: str) -> str:
    """How a case-insensitive share (Azure Files over SMB) compares two paths."""
    return path.upper()


@pytest.mark.parametrize(
    ("name", "mseed"),
    [
        ("snorre/小文件.sgy", "mseed/snorre/小文件.sgy.mseed"),  # safe as it is: kept
        ("snorre/line 4 #1 (øst).sgy", "mseed/snorre/line 4 #1 (øst).sgy.mseed"),
    ],
)
def test_safe_names_are_kept_as_they_are(name: str, mseed: str) -> None:
    assert blob_paths(name).mseed == mseed


def test_unsafe_segments_keep_their_text_and_gain_a_hash() -> None:
    mapped = blob_paths("snorre/Snorre line 4 #1.sgy").mseed
    assert re.fullmatch(r"mseed/snorre/Snorre line 4 #1\.sgy~[0-9a-f]{10}\.mseed", mapped)
    mapped = blob_paths('snorre/a:b|c"d*e?.sgy').mseed
    assert re.fullmatch(r"mseed/snorre/a_b_c_d_e_\.sgy~[0-9a-f]{10}\.mseed", mapped)
    assert re.fullmatch(
        r"mseed/snorre/run_~[0-9a-f]{10}/x\.mseed", blob_paths("snorre/run./x").mseed
    )
    assert re.fullmatch(
        r"mseed/snorre/_CON~[0-9a-f]{10}/x\.mseed", blob_paths("snorre/CON/x").mseed
    )


def test_mapping_is_deterministic_across_processes() -> None:
    import subprocess
    import sys

    name = "snorre/Grane Ø/Snorre line 4 #1.sgy"
    code = f"from shared_code.share_layout import blob_paths; print(blob_paths({name!r}).mseed)"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True, env={"PYTHONHASHSEED": "123"})  # fmt: skip
    assert out.stdout.strip() == blob_paths(name).mseed


NEAR_NAMES = [
    "snorre/a.sgy", "snorre/A.sgy", "snorre/A.SGY", "Snorre/a.sgy", "SNORRE/a.sgy",
    "snorre/a:b.sgy", "snorre/a_b.sgy", "snorre/a?b.sgy", "snorre/a~b.sgy",
    "snorre/a_b.sgy~0000000000", "snorre/dir./x", "snorre/dir/x", "snorre/dir_/x",
    "snorre/dir /x", "snorre/\u00e9.sgy", "snorre/e\u0301.sgy", "snorre/\u00c9.sgy",
    "snorre/ς.sgy", "snorre/σ.sgy", "snorre/Σ.sgy", "snorre/straße", "snorre/STRASSE",
    "snorre/strasse", "snorre/a\u200bb.sgy", "snorre/ab.sgy", "snorre/a\u200cb.sgy",
    "snorre/CON", "snorre/con", "snorre/_CON", "snorre/x/a", "snorre/x_a",
    "snorre/" + "L" * 300, "snorre/" + "L" * 299 + "M", "snorre/" + "l" * 300,
]  # fmt: skip


def test_near_names_never_share_a_path_even_case_insensitively() -> None:
    """Names that differ only in case, in a replaced character, in Unicode normalisation, in
    an invisible character or a trailing dot, or beyond the length cut: all distinct."""
    paths = {}
    for name in NEAR_NAMES:
        for mapped in (blob_paths(name).mseed, blob_paths(name).decimated("segy")):
            key = _share_key(mapped)
            assert key not in paths, f"{name!r} and {paths[key]!r} both map to {mapped!r}"
            paths[key] = name


def test_long_segments_and_paths_stay_within_the_share_and_seiscomp_limits() -> None:
    deep = "snorre/" + "/".join(f"{'ø' * 60}{i}" for i in range(6)) + "/" + "小" * 200 + ".sgy"
    mapped = blob_paths(deep)
    for segment in mapped.mseed.split("/"):
        assert len(segment.encode()) <= 255  # Azure Files / ext4 component limit
    assert len(mapped.mseed.encode()) <= MAX_PATH_BYTES  # mseedscan skips 511+ characters
    assert all("~" in s for s in mapped.mseed.split("/")[2:])  # every cut segment is hashed
    assert blob_paths(deep).mseed == mapped.mseed


def test_blob_key_is_a_valid_table_key_and_keeps_the_name_recognisable() -> None:
    for name in [*NEAR_NAMES, "snorre/a#b?c\\d/e.sgy", "snorre/小文件.sgy"]:
        key = blob_key(name, '"0x8D1"')
        assert not set(key) & set("/\\#?") and all(ord(c) >= 32 for c in key)
        assert len(key.encode()) < 1024
    assert blob_key("snorre/小文件.sgy").startswith("snorre_小文件.sgy-")
    assert len({blob_key(n) for n in NEAR_NAMES}) == len(NEAR_NAMES)
