"""Find a blob's MiniSEED on a test share without knowing its data's day in advance."""

from __future__ import annotations

from pathlib import Path

from shared_code.share_layout import mseed_files


def mseed_file(share: Path, blob: str) -> Path:
    """The one MiniSEED file of ``blob``; fails when there is none or more than one."""
    found = mseed_files(share, blob)
    assert len(found) == 1, f"{blob}: expected one MiniSEED file, found {found}"
    return found[0]
