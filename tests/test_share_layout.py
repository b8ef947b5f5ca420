"""Share paths: derived from the blob name by one function, idempotent, never escaping."""

import re
from pathlib import Path

import pytest

from shared_code.share_layout import (
    FILE_EXTENSIONS,
    MAX_FOLDED_BYTES,
    MAX_MSEED_PATH_BYTES,
    MAX_PATH_BYTES,
    MSEED_DEPTH,
    BlobNameError,
    atomic_writer,
    blob_key,
    blob_paths,
    day_folder,
    resolve,
    seam_mseed_path,
    write_atomic,
)

#: 2026-11-23T12:00:00Z in ns: day 327 of 2026.
T = 1_795_435_200 * 10**9


def test_same_blob_same_paths() -> None:
    a = blob_paths("snorre/2026/11/23/f.sgy")
    b = blob_paths("snorre/2026/11/23/f.sgy")
    assert a.decimated("segy") == b.decimated("segy") == "decimated/snorre/2026/11/23/f.sgy.segy"
    assert a.mseed(T) == b.mseed(T) == "mseed/snorre/2026/327/2026~~11~~23~~f.sgy.mseed"
    assert a.blob.field == "snorre"


def test_distinct_blobs_distinct_paths() -> None:
    assert blob_paths("snorre/a.sgy").mseed(T) != blob_paths("snorre/a.segy").mseed(T)
    assert blob_paths("snorre/x/a").mseed(T) != blob_paths("snorre/x_a").mseed(T)
    assert blob_paths("snorre/x/a").mseed(T) != blob_paths("snorre/x~~a").mseed(T)


@pytest.mark.parametrize(
    ("iso", "folder"),
    [
        ("2026-11-23T12:00:00", "2026/327"),
        ("2024-12-31T23:59:59.999999", "2024/366"),  # leap year: day 366
        ("2025-01-01T00:00:00", "2025/001"),
        ("1969-12-31T23:59:59.5", "1969/365"),  # before 1970: negative ns
    ],
)
def test_day_folder_is_the_utc_year_and_day_of_year(iso: str, folder: str) -> None:
    from obspy import UTCDateTime

    assert day_folder(UTCDateTime(iso).ns) == folder


def test_a_start_outside_the_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the years 1-9999"):
        day_folder(300_000 * 365 * 86400 * 10**9)


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
        ("snorre/小文件.sgy", "mseed/snorre/2026/327/小文件.sgy.mseed"),  # safe as it is: kept
        ("snorre/line 4 #1 (øst).sgy", "mseed/snorre/2026/327/line 4 #1 (øst).sgy.mseed"),
        ("snorre/l1/l2/l3/l4/l5/l6/f.sgy",
         "mseed/snorre/2026/327/l1~~l2~~l3~~l4~~l5~~l6~~f.sgy.mseed"),  # 7 levels: folded
    ],
)  # fmt: skip
def test_safe_names_are_kept_as_they_are(name: str, mseed: str) -> None:
    assert blob_paths(name).mseed(T) == mseed


def test_unsafe_segments_keep_their_text_and_gain_a_hash() -> None:
    day = "mseed/snorre/2026/327"
    mapped = blob_paths("snorre/Snorre line 4 #1.sgy").mseed(T)
    assert re.fullmatch(rf"{day}/Snorre line 4 #1\.sgy~[0-9a-f]{{10}}\.mseed", mapped)
    mapped = blob_paths('snorre/a:b|c"d*e?.sgy').mseed(T)
    assert re.fullmatch(rf"{day}/a_b_c_d_e_\.sgy~[0-9a-f]{{10}}\.mseed", mapped)
    mapped = blob_paths("snorre/run./x").mseed(T)
    assert re.fullmatch(rf"{day}/run_~[0-9a-f]{{10}}~~x\.mseed", mapped)
    mapped = blob_paths("snorre/CON/x").mseed(T)
    assert re.fullmatch(rf"{day}/_CON~[0-9a-f]{{10}}~~x\.mseed", mapped)


def test_mapping_is_deterministic_across_processes() -> None:
    import subprocess
    import sys

    name = "snorre/Grane Ø/Snorre line 4 #1.sgy"
    code = f"from shared_code.share_layout import blob_paths as b; print(b({name!r}).mseed({T}))"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True, env={"PYTHONHASHSEED": "123"})  # fmt: skip
    assert out.stdout.strip() == blob_paths(name).mseed(T)


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
        for mapped in (blob_paths(name).mseed(T), blob_paths(name).decimated("segy")):
            key = _share_key(mapped)
            assert key not in paths, f"{name!r} and {paths[key]!r} both map to {mapped!r}"
            paths[key] = name


def test_long_segments_and_paths_stay_within_the_share_and_seiscomp_limits() -> None:
    deep = "snorre/" + "/".join(f"{'ø' * 60}{i}" for i in range(6)) + "/" + "小" * 200 + ".sgy"
    mapped = blob_paths(deep)
    for path in (mapped.mseed(T), mapped.decimated("segy")):
        for segment in path.split("/"):
            assert len(segment.encode()) <= 255  # Azure Files / ext4 component limit
    assert len(mapped.decimated("segy").encode()) <= MAX_PATH_BYTES
    assert all("~" in s for s in mapped.decimated("segy").split("/")[2:])  # cut: hashed
    mseed = mapped.mseed(T)
    assert len(mseed.encode()) <= MAX_MSEED_PATH_BYTES < 400
    assert mseed.count("/") == 1 + MSEED_DEPTH  # mseed/<field>/<YYYY>/<DDD>/<file>
    assert mseed.endswith(f"~~~{mseed[-22:-6]}.mseed")  # cut to fit, with the path's hash
    assert f"~~{mapped.blob.rest.name}~~~" in mseed  # ...keeping the file's own (mapped) name
    assert blob_paths(deep).mseed(T) == mseed


def test_folded_names_cut_to_fit_stay_distinct() -> None:
    """Names whose folded form is too long share their kept end but not their hash."""
    names = [
        "snorre/" + "/".join(f"{prefix}{'d' * 40}{i}" for i in range(6)) + "/f.sgy"
        for prefix in ("a", "b", "A", "B")
    ]
    mseeds = [blob_paths(n).mseed(T) for n in names]
    assert len({m.upper() for m in mseeds}) == len(names)
    for mseed in mseeds:
        name = mseed.rpartition("/")[2]
        assert len(name.encode()) == MAX_FOLDED_BYTES + len(".mseed") == 255
        assert re.fullmatch(r".*~~f\.sgy~~~[0-9a-f]{16}\.mseed", name)  # the file's name kept


def test_blob_key_is_a_valid_table_key_and_keeps_the_name_recognisable() -> None:
    for name in [*NEAR_NAMES, "snorre/a#b?c\\d/e.sgy", "snorre/小文件.sgy"]:
        key = blob_key(name, '"0x8D1"')
        assert not set(key) & set("/\\#?") and all(ord(c) >= 32 for c in key)
        assert len(key.encode()) < 1024
    assert blob_key("snorre/小文件.sgy").startswith("snorre_小文件.sgy-")
    assert len({blob_key(n) for n in NEAR_NAMES}) == len(NEAR_NAMES)


# -- files, folders and the layout's own folders never meet ---------------------------------


def test_layout_extensions_cover_every_format_the_pipeline_writes() -> None:
    from shared_code import formats

    assert set(formats.EXTENSIONS.values()) <= FILE_EXTENSIONS
    assert "mseed" in FILE_EXTENSIONS


def test_a_blob_file_and_another_blob_folder_of_the_same_name_both_fit(share: Path) -> None:
    """``snorre/a`` is the file ``a.mseed``; ``snorre/a.mseed/b`` needs a folder for its
    ``a.mseed`` segment: mapped to another name, both are written (before, the second write
    failed with FileExistsError, an OSError that counts as transient and was retried for
    ever)."""
    file_blob, folder_blob = blob_paths("snorre/a"), blob_paths("snorre/a.mseed/b")
    assert file_blob.mseed(T) == "mseed/snorre/2026/327/a.mseed"
    assert re.fullmatch(
        r"mseed/snorre/2026/327/a\.mseed~[0-9a-f]{10}~~b\.mseed", folder_blob.mseed(T)
    )
    for paths in (file_blob, folder_blob, blob_paths("snorre/x.segy/y")):
        write_atomic(share, paths.mseed(T), b"m")
        write_atomic(share, paths.decimated("segy"), b"d")
    assert resolve(share, file_blob.mseed(T)).read_bytes() == b"m"
    assert resolve(share, folder_blob.decimated("segy")).read_bytes() == b"d"


def test_no_blob_maps_into_the_layout_seam_folder() -> None:
    seam = seam_mseed_path("snorre", "0123abcd", 42, "left")
    assert seam.count("/") == 1 + MSEED_DEPTH  # mseed/<field>/_seams/<stream>/<file>
    blob = "snorre/_seams/0123abcd/42-left"
    assert blob_paths(blob).mseed(T) != seam
    assert not blob_paths(blob).mseed(T).startswith("mseed/snorre/_seams/")
    assert re.fullmatch(r"mseed/snorre/2026/327/_seams~[0-9a-f]{10}~~.*", blob_paths(blob).mseed(T))
    with pytest.raises(ValueError, match="64-bit"):
        seam_mseed_path("snorre", "0123abcd", 2**63, "left")


def _simple_upper(path: str) -> str:
    """Per-character upper case where it is one character: how Windows file systems compare
    names (NTFS's $UpCase table maps each BMP character to a single upper-case one, so ``ß``
    does not become ``SS``; M. Kaplan, "How [case-]insensitive", 2005,
    http://archives.miloush.net/michkap/archive/2005/01/16/353873.html). Azure Files does not
    publish its table, so the test also compares with Python's full ``str.upper``."""
    return "".join(u if len(u := c.upper()) == 1 else c for c in path)


_PIECES = [
    "a", "A", "b", "_", "_seams", "seams", ".mseed", ".MSEED", ".Mseed", ".segy", ".sgy",
    ".su", ".sac", ".gse2", ".ccsw", "\u00e9", "e\u0301", "\u00c9", "ς", "σ", "Σ", "ß", "ss",
    ":", "?", "*", "~", "~0123456789", " ", ".", "con", "CON", "\u200b", "ſ", "K", "\u212a",
]  # fmt: skip


def _generated_names(count: int, seed: int) -> list[str]:
    """Blob names mixing the tricky parts: case, extensions as folders, ``_`` prefixes,
    replaced and invisible characters, NFC/NFD, reserved names, trailing dots."""
    import random

    rng = random.Random(seed)  # fixed seed: the same names on every run and machine
    names = {"snorre/a", "snorre/a.mseed/b", "snorre/_seams/0123abcd/42-left", "snorre/a~~b"}
    while len(names) < count:
        field = rng.choice(["snorre", "Snorre", "grane"])
        # Mostly shallow names; one in ten 4 to 9 levels deep (folded into one file name).
        depth = rng.randint(1, 3) if rng.random() < 0.9 else rng.randint(4, 9)
        segments = ["".join(rng.choices(_PIECES, k=rng.randint(1, 3))) for _ in range(depth)]
        names.add("/".join([field, *segments]))
    return sorted(names)


def test_no_blob_path_equals_or_contains_another_blobs_path() -> None:
    """Over thousands of generated names: no blob's file (mseed on two days, or decimated in
    any format) equals another blob's file or folder, nor lies in a folder the layout owns,
    compared case-insensitively as Azure Files does (simple and full upper case both tried);
    every MiniSEED path is exactly :data:`MSEED_DEPTH` folders below ``mseed/`` and within
    :data:`MAX_MSEED_PATH_BYTES`, which is below 400 bytes."""
    owner_of_file: dict[str, str] = {}
    owners_of_folder: dict[str, str] = {}
    mapped = 0
    for name in _generated_names(4000, seed=9):
        try:
            paths = blob_paths(name)
        except BlobNameError:
            continue  # '.' or '..' segments, refused by design
        mapped += 1
        mseeds = [paths.mseed(T), paths.mseed(T + 86400 * 10**9)]
        for mseed in mseeds:
            assert mseed.count("/") == 1 + MSEED_DEPTH, mseed
            assert len(mseed.encode()) <= MAX_MSEED_PATH_BYTES < 400, mseed
        files = [*mseeds, *(paths.decimated(ext) for ext in sorted(FILE_EXTENSIONS))]
        for file in files:
            for compare in (_simple_upper, str.upper):
                key = f"{compare.__name__}:{compare(file)}"
                assert key not in owner_of_file, f"{name!r}, {owner_of_file[key]!r}: {file!r}"
                owner_of_file[key] = name
                parts = compare(file).split("/")
                for depth in range(2, len(parts)):
                    owners_of_folder[f"{compare.__name__}:{'/'.join(parts[:depth])}"] = name
        for segment in paths.blob.rest.parts:
            assert not segment.startswith("_") or "~" in segment, (name, segment)
    assert mapped > 3500  # the generator mostly makes names Azure and the mapper accept
    clashes = owner_of_file.keys() & owners_of_folder.keys()
    assert not clashes, [(k, owner_of_file[k], owners_of_folder[k]) for k in sorted(clashes)][:5]
    for field in ("SNORRE", "GRANE"):
        for compare in (_simple_upper, str.upper):
            seams = f"{compare.__name__}:MSEED/{field}/_SEAMS"
            assert seams not in owners_of_folder and seams not in owner_of_file


# -- ledger keys: unchanged for every name the first parser accepted ------------------------


def _first_blob_key(name: str, *extra: str) -> str:
    """``blob_key`` as first deployed (eb5fbbc); ledger rows were written under its keys."""
    import hashlib

    digest = hashlib.sha256("\0".join((name, *extra)).encode("utf-8", "surrogatepass"))
    safe = re.sub(r"[^A-Za-z0-9._-]+|\.{2,}", "_", name)[-60:].strip("._") or "blob"
    return f"{safe}-{digest.hexdigest()[:16]}"


_FIRST_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=@-]{0,254}$")  # eb5fbbc's rule

FIRST_VALID_NAMES = [
    "snorre/a.sgy", "Snorre/A.SGY", "snorre/2024/05/01/rec.segy", "snorre/x+y=z@w.su",
    "snorre/a..b.sgy", "snorre/a.-_.b", "grane/" + "L" * 59 + ".sgy", "grane/" + "x" * 61,
    "snorre/2026/11/23/" + "line-4_shot=17+gain@12dB." * 8 + "sgy",
    "snorre/" + "/".join(f"d{i}" for i in range(100)) + "/f.segy",
    "snorre/" + "a" * 255, "snorre/Z.", "snorre/9.-", "snorre/0",
]  # fmt: skip


@pytest.mark.parametrize("name", FIRST_VALID_NAMES)
def test_ledger_keys_of_names_the_first_parser_accepted_are_unchanged(name: str) -> None:
    assert all(_FIRST_SEGMENT.match(p) for p in name.split("/"))  # a name it accepted
    for etag in ("0x8DC1111111111111", "0x8D1"):
        assert blob_key(name, etag) == _first_blob_key(name, etag)
    assert blob_key(name) == _first_blob_key(name)


def test_new_names_get_valid_unique_keys_with_a_longer_readable_part() -> None:
    names = [*_generated_names(2000, seed=11), "snorre/" + "小文件" * 30 + ".sgy"]
    keys = {blob_key(n, "0x8D1"): n for n in names}
    assert len(keys) == len(names)
    for key in keys:
        assert not set(key) & set("/\\#?") and all(ord(c) >= 32 and c != "\x7f" for c in key)
        assert len(key.encode()) < 1024  # Table key limit: 1 KiB
    long_name = "snorre/" + "ø" * 100 + ".sgy"
    assert blob_key(long_name).startswith("ø" * 58 + ".sgy-")  # 2 × 58 + 4 = 120 bytes
