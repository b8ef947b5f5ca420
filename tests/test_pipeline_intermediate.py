"""The decimated (intermediate) file of real inputs, from ObsPy's shipped test data, through
``decimate_file`` + ``convert_file`` on a share directory.

Inputs whose own ids miniSEED 2 cannot carry exactly (a WIN channel ``a100``, a CSS station
``TESTbe``, a GSE1 channel `` BZ``, KNET and DMX networks, REFTEK and RG16 files with one id
several times) are decimated into CCSW and read back exactly; ordinary files stay miniSEED (or
their own format: SAC); convert turns each into MiniSEED.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from shared_code import formats
from shared_code.fields import FieldConfig, load_fields
from shared_code.formats.obspy_bridge import round_us
from shared_code.messages import SourceBlob
from shared_code.share_layout import resolve
from shared_code.stages import convert_file, decimate_file
from shared_code.waveforms import Recording, TraceMeta

ROOT = Path(__file__).resolve().parent.parent


def obspy_data(relative: str) -> Path:
    import obspy

    return Path(obspy.__file__).parent / "io" / relative


#: ObsPy format -> a shipped file whose ids miniSEED 2 cannot carry, and why.
ODD_IDS = {
    "WIN": "win/tests/data/10030302.00",  # channels a100, a101
    "CSS": "css/tests/data/test_css.wfdisc",  # stations TESTbe, TESTle
    "GSE1": "gse2/tests/data/acc.gse",  # channel " BZ": ObsPy's miniSEED reader strips it
    "KNET": "nied/tests/data/test.knet",  # network BO with station AKT013 (6 characters)
    "REFTEK130": "reftek/tests/data/225051000_00008656",  # KW1..EH0 three times, overlapping
    "DMX": "dmx/tests/data/131114_090600.dmx",  # network ETNA
    "RG16": "rg16/tests/data/one_channel_many_traces.fcnt",  # one id, ten abutting traces
}


@pytest.fixture
def grane() -> FieldConfig:
    """A field that numbers stations by trace index: every trace gets its own SEED id."""
    return load_fields(ROOT / "config" / "fields.toml").get("grane")


def _source(name: str) -> SourceBlob:
    return SourceBlob(
        url=f"file:///{name}", container="raw", name=name, etag='"0x1"', event_id="e",
        event_time="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


def _obspy_read(path: Path):  # -> obspy.Stream
    import obspy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return obspy.read(str(path))


def _traces(recording: Recording) -> list[tuple]:
    """(TraceMeta, rate Hz, start ns, samples) of every trace of a recording."""
    return [
        (meta, block.sampling_rate, block.starttime_ns, row)
        for block in recording.blocks
        for meta, row in zip(block.traces, block.data, strict=True)
    ]


def _by_identity(recording: Recording) -> dict[tuple, tuple]:
    """The traces keyed by what tells them apart: codes, start (ns) and sample count."""
    out = {
        (m.network, m.station, m.location, m.channel, start, len(row)): (m, rate, start, row)
        for m, rate, start, row in _traces(recording)
    }
    assert len(out) == recording.n_traces
    return out


def _channel_numbers(stream) -> list[int]:  # stream: obspy.Stream
    """Each trace's channel number: the order in which its NET.STA.LOC.CHA first appears
    (segments of one channel share it)."""
    first: dict[str, int] = {}
    return [first.setdefault(tr.id, len(first)) for tr in stream]


def _run(
    path: Path, share: Path, cfg: FieldConfig, target_rate_hz: float | None = None
) -> tuple[Recording, Path]:
    """decimate_file then convert_file; the decimated file read back and the MiniSEED path."""
    blob = f"{cfg.name}/{path.name}"
    request, report = decimate_file(
        path, blob, share, cfg, _source(blob), target_rate_hz=target_rate_hz
    )
    decimated = formats.read(resolve(share, report.output_path), report.output_path)
    assert decimated.format == report.output_format == request.file_type
    assert report.output_path.endswith("." + formats.EXTENSIONS[report.output_format])
    converted = convert_file(request, share, cfg)
    assert converted.traces == decimated.n_traces
    return decimated, resolve(share, converted.output_path)


def _assert_converted(decimated: Recording, mseed_path: Path, cfg: FieldConfig) -> None:
    """The MiniSEED holds every decimated trace under its channel number's SEED id, sample
    for sample (int32 counts stay int32, floats are float32 in both), at the µs-rounded start
    (segments of one channel that abut read back joined: found by time within them)."""
    stream = _obspy_read(mseed_path)
    assert {tr.stats._format for tr in stream} == {"MSEED"}
    channels = {m.index for m, *_ in _traces(decimated)}
    assert len({tr.id for tr in stream}) == len(channels)
    for meta, rate, start, row in _traces(decimated):
        sid = cfg.seed_id(TraceMeta(meta.index), rate)
        found = False
        for tr in stream.select(id=sid):
            # miniSEED 2 holds a rate at best as a float32 (SEED 2.4, blockette 100), so a
            # rate such as GSE1's 19.9999997 Hz reads back rounded: relative error ≤ 2**-24.
            assert tr.stats.sampling_rate == pytest.approx(rate, rel=2**-24)
            offset = round((round_us(start) - tr.stats.starttime.ns) * rate / 1e9)
            if offset >= 0 and offset + len(row) <= tr.stats.npts:
                part = tr.data[offset : offset + len(row)]
                if part.dtype.kind == row.dtype.kind and np.array_equal(part, row):
                    found = True
                    break
        assert found, (sid, start, len(row))


@pytest.mark.parametrize("fmt", ODD_IDS)
def test_inputs_with_ids_miniseed_cannot_carry_pass_through_ccsw_exactly(
    share: Path, grane: FieldConfig, fmt: str
) -> None:
    """At the input's own rate (passed through), the decimated file is ObsPy's reading of the
    input: the same ids, rates, µs starts (the readers' resolution) and samples."""
    path = obspy_data(ODD_IDS[fmt])
    stream = _obspy_read(path)
    assert {tr.stats._format for tr in stream} == {fmt}
    top_rate = max(tr.stats.sampling_rate for tr in stream)
    decimated, mseed_path = _run(path, share, grane, target_rate_hz=top_rate)
    assert decimated.format == "CCSW"
    assert decimated.file_headers == {"input_format": fmt}
    traces = _by_identity(decimated)
    assert len(traces) == len(stream)
    for number, tr in zip(_channel_numbers(stream), stream, strict=True):
        stats = tr.stats
        key = (stats.network, stats.station, stats.location, stats.channel)
        meta, rate, _start, row = traces[(*key, round_us(stats.starttime.ns), stats.npts)]
        assert meta.index == number
        assert rate == stats.sampling_rate
        stored = np.int32 if tr.data.dtype.kind in "iu" else np.float32
        assert row.dtype == np.dtype(stored)
        assert np.array_equal(tr.data.astype(stored), tr.data)  # the input is int32/float32
        np.testing.assert_array_equal(row, tr.data)
    _assert_converted(decimated, mseed_path, grane)


@pytest.mark.parametrize("fmt", ODD_IDS)
def test_inputs_with_ids_miniseed_cannot_carry_are_decimated_into_ccsw(
    share: Path, grane: FieldConfig, fmt: str
) -> None:
    """Decimated to 10 Hz: the container keeps every trace's index and ids, and convert
    writes all of them (a miniSEED intermediate lost or merged some, or failed)."""
    path = obspy_data(ODD_IDS[fmt])
    stream = _obspy_read(path)
    decimated, mseed_path = _run(path, share, grane, target_rate_hz=10.0)
    assert decimated.format == "CCSW"
    numbers = dict(zip((tr.id for tr in stream), _channel_numbers(stream), strict=True))
    traces = _traces(decimated)
    assert sorted({m.index for m, *_ in traces}) == sorted(set(numbers.values()))
    for meta, rate, _start, _row in traces:
        assert numbers[f"{meta.network}.{meta.station}.{meta.location}.{meta.channel}"] == (
            meta.index
        )
        assert rate == 10.0
    _assert_converted(decimated, mseed_path, grane)


def test_selected_channels_keep_their_numbers(share: Path, grane: FieldConfig) -> None:
    """One channel of three selected by the field from a REFTEK file whose channels come in
    three, overlapping segments: the decimated file holds that channel's segments, all under
    its number, and the message's number list matches them (repeats included)."""
    cfg = dataclasses.replace(grane, channels=(1,))
    path = obspy_data(ODD_IDS["REFTEK130"])
    stream = _obspy_read(path)
    decimated, mseed_path = _run(path, share, cfg)
    assert decimated.format == "CCSW"
    traces = _traces(decimated)
    assert [m.index for m, *_ in traces] == [1] * len(stream.select(channel="EH1"))
    assert {m.channel for m, *_ in traces} == {"EH1"}
    _assert_converted(decimated, mseed_path, cfg)


@pytest.mark.parametrize(
    ("relative", "fmt"), [("ah/tests/data/ah1.f", "MSEED"), ("sac/tests/data/test.sac", "SAC")]
)
@pytest.mark.parametrize("target", [None, 0.5])
def test_ordinary_inputs_keep_an_obspy_readable_intermediate(
    share: Path, grane: FieldConfig, relative: str, fmt: str, target: float | None
) -> None:
    """Ids that fit: the decimated file stays miniSEED (or SAC, the input's own format) and
    ObsPy reads it as we do. SAC is written through the share writer (it used to fail)."""
    path = obspy_data(relative)
    stream = _obspy_read(path)
    rate = max(tr.stats.sampling_rate for tr in stream)
    decimated, mseed_path = _run(path, share, grane, target_rate_hz=target or rate)
    assert decimated.format == fmt
    [written] = [p for p in (share / "decimated").rglob("*") if p.is_file()]
    by_obspy = _obspy_read(written)
    assert len(by_obspy) == decimated.n_traces
    for index, (meta, rate_hz, start, row) in enumerate(_traces(decimated)):
        tr = by_obspy[index]
        assert tr.stats.channel == meta.channel == stream[index].stats.channel
        assert (tr.stats.sampling_rate, tr.stats.starttime.ns) == (rate_hz, start)
        np.testing.assert_array_equal(tr.data, row)
        if target is None:  # passed through: the input's samples
            np.testing.assert_array_equal(row, stream[index].data)
    _assert_converted(decimated, mseed_path, grane)
