"""SEG-Y trace headers as one table with a mapping view per trace."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.formats import segy, traceheader
from shared_code.formats.traceheader import HeaderRow, HeaderTable
from shared_code.waveforms import Block, Recording, TraceMeta
from tests import formats_helpers as fh


def _table() -> HeaderTable:
    return HeaderTable(("A", "B", "C"), np.array([[1, 2, 3], [4, 5, 6]]))


def test_a_row_reads_like_a_dict_of_its_words() -> None:
    row = _table().rows()[1]
    assert dict(row) == {"A": 4, "B": 5, "C": 6}
    assert row["B"] == 5 and row.get("Z", 0) == 0 and "C" in row and "Z" not in row
    assert len(row) == 3 and list(row) == ["A", "B", "C"]
    assert type(row["A"]) is int
    assert row == {"A": 4, "B": 5, "C": 6}


def test_setting_a_word_writes_the_table_and_other_keys_stay_with_the_row() -> None:
    table = _table()
    first, second = table.rows()
    second["B"] = 50
    assert table.words[1, 1] == 50 and second["B"] == 50 and second.plain
    assert first["B"] == 2
    second["note"] = "x"  # not a word of the table
    second["C"] = 2**70  # not an int64
    assert not second.plain
    assert (second["note"], second["C"]) == ("x", 2**70)
    assert table.words[1, 2] == 6  # the table keeps its own value
    assert len(second) == 4 and list(second) == ["A", "B", "C", "note"]
    second["C"] = 7  # back to a table word: the row's own value goes
    assert second["C"] == 7 and table.words[1, 2] == 7
    with pytest.raises(TypeError):
        del second["A"]


def test_timing_key_from_the_table_equals_the_dict_path() -> None:
    table = HeaderTable(
        ("YearDataRecorded", "DayOfYear", "DelayRecordingTime", "GroupX"),
        np.array([[2026, 327, 5, 1], [2026, 328, 0, 2]]),
    )
    for row in table.rows():
        assert traceheader.timing_key(row) == traceheader.timing_key(dict(row))
    row = table.rows()[0]
    row["DelayRecordingTime"] = 9
    assert traceheader.timing_key(row) == traceheader.timing_key(dict(row))


def _written(recording: Recording) -> bytes:
    out = io.BytesIO()
    segy.write(recording, out)
    return out.getvalue()


@pytest.mark.parametrize("change", ["none", "word", "extra"])
def test_writer_table_path_writes_what_the_per_trace_path_writes(
    tmp_path: Path, change: str
) -> None:
    """Untouched rows of one table go to the writer as a matrix; rows with words set outside
    the table, and plain dicts, go trace by trace: the same file either way."""
    path = tmp_path / "in.sgy"
    fh.make_segy(path, 6, 200, 500.0, "int32")
    recording = formats.read(path, "f.sgy")
    block = recording.blocks[0]
    if change == "word":
        block.traces[2].headers["GroupX"] = 12345
    elif change == "extra":
        block.traces[2].headers["GroupX"] = 12345
        block.traces[3].headers["vendor_note"] = "kept out of SEG-Y"
    assert all(type(t.headers) is HeaderRow for t in block.traces)
    as_dicts = Recording(
        recording.format,
        [
            Block(
                block.data,
                block.sampling_rate,
                block.starttime_ns,
                [
                    TraceMeta(index=t.index, headers={k: v for k, v in t.headers.items()})
                    for t in block.traces
                ],
            )
        ],
        recording.source,
        recording.file_headers,
    )
    assert _written(recording) == _written(as_dicts)
    back = tmp_path / "out.sgy"
    back.write_bytes(_written(recording))
    again = formats.read(back, "out.sgy").blocks[0]
    want = 12345 if change != "none" else block.traces[2].headers["GroupX"]
    assert again.traces[2].headers["GroupX"] == want
