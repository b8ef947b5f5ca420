"""Share paths: derived from the blob name by one function, idempotent, never escaping."""

from pathlib import Path

import pytest

from shared_code.share_layout import (
    BlobNameError,
    atomic_writer,
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
        ("snorre\\..\\a.sgy", "Windows"),
        ("C:/snorre/a.sgy", "Windows"),
        ("a.sgy", "no field folder"),
        ("snorre/a b.sgy", "characters"),
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
