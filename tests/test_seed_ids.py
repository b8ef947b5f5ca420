"""SEED ids end to end: one id per input channel whatever its gaps, and only ids that SeisComP's
generated bindings serve (anything else is refused, early and clearly, and replayable).

Inputs we did not make: ObsPy's shipped ``gaps.mseed`` (one channel, BW.BGLD..EHE at 200 Hz, in
four segments) and a two-channel file cut from it.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import obspy
import pytest

from scripts.sample_data import array_record, write_segy
from shared_code import seiscomp
from shared_code.fields import FieldConfig, SeedIdError, load_fields, parse_fields
from shared_code.formats import read
from shared_code.ledger import Ledger
from shared_code.messages import SourceBlob
from shared_code.settings import get_settings
from shared_code.share_layout import STATE, blob_paths, ensure_layout, mseed_files
from shared_code.stages import PERMANENT_ERRORS, check_seed_ids, convert_file, decimate_file
from shared_code.waveforms import TraceMeta
from tests.share_helpers import mseed_file

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ROOT / "config" / "fields.toml"
GAPS = Path(obspy.__file__).parent / "io" / "mseed" / "tests" / "data" / "gaps.mseed"
#: A valid SEED id: network 1-2, station 1-5, location 0-2, channel 3 upper-case letters/digits.
SEED_ID = re.compile(r"^[A-Z0-9]{1,2}\.[A-Z0-9]{1,5}\.[A-Z0-9]{0,2}\.[A-Z0-9]{3}$")


def _source(blob: str) -> SourceBlob:
    return SourceBlob(url=f"file:///{blob}", container="raw", name=blob, etag='"0x1"',
                      event_id="e1", event_time="")  # fmt: skip


def _two_gappy_channels(path: Path) -> obspy.Stream:
    """gaps.mseed's four segments, and the same segments as a second channel (EHN), the
    segments of both channels interleaved in the file as a recorder writes them."""
    stream = obspy.read(str(GAPS))
    other = stream.copy()
    for tr in other:
        tr.stats.channel = "EHN"
    both = obspy.Stream([tr for pair in zip(stream, other, strict=True) for tr in pair])
    both.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
    return both


def _process(path: Path, field: str, share: Path):
    ensure_layout(share)
    cfg = load_fields(FIELDS).get(field)
    blob = f"{field}/2008/01/01/{path.name}"
    request, _report = decimate_file(path, blob, share, cfg, _source(blob))
    report = convert_file(request, share, cfg)
    return report, obspy.read(str(share / report.output_path))


@pytest.mark.parametrize(
    ("field", "ids"),
    [
        # grane: 200 Hz decimated to 100 Hz (band E); snorre: 200 Hz <= its 250 Hz target,
        # passed through unchanged (band E too: 80 <= 200 < 250 Hz).
        ("grane", ["XG.G0001.00.EP1", "XG.G0001.00.EPZ"]),
        ("snorre", ["XS.S0001.00.EP1", "XS.S0001.00.EPZ"]),
    ],
)
def test_segments_of_one_channel_keep_one_seed_id(
    tmp_path: Path, field: str, ids: list[str]
) -> None:
    raw = _two_gappy_channels(tmp_path / "gappy.mseed")
    report, out = _process(tmp_path / "gappy.mseed", field, tmp_path / "share")
    assert report.seed_ids == ids  # one per input channel, not one per segment
    rendered = tmp_path / "seiscomp"
    seiscomp.write(rendered, seiscomp.render(load_fields(FIELDS)))
    assert seiscomp.uncovered(rendered, report.seed_ids) == []
    # The gaps are kept: per channel, four segments, each inside its input segment (to one
    # output sample: the decimated grid may start up to a sample later or end a sample earlier).
    by_channel = {
        "EHE": [tr for tr in raw if tr.stats.channel == "EHE"],
        "EHN": [tr for tr in raw if tr.stats.channel == "EHN"],
    }
    for seed_id, channel in zip(ids, ["EHN", "EHE"], strict=True):
        segments = sorted(out.select(id=seed_id), key=lambda tr: tr.stats.starttime)
        assert len(segments) == 4, seed_id
        for got, was in zip(segments, by_channel[channel], strict=True):
            dt = got.stats.delta
            assert was.stats.starttime - dt <= got.stats.starttime
            assert got.stats.endtime <= was.stats.endtime + dt
            if field == "snorre":  # passed through: the very samples and times
                assert got.stats.starttime == was.stats.starttime
                np.testing.assert_array_equal(got.data, was.data)
        assert len(out.select(id=seed_id).get_gaps()) == 3


def test_a_gappy_channel_alone(tmp_path: Path) -> None:
    """ObsPy's file as shipped: four segments of one channel give one SEED id."""
    report, out = _process(GAPS, "grane", tmp_path / "share")
    assert report.seed_ids == ["XG.G0001.00.EPZ"]
    assert len(out) == 4 and len(out.get_gaps()) == 3


def _config(extra: str, *, count: int = 1, field: str = "grane") -> FieldConfig:
    text = f"""
[fields.{field}]
network = "XG"
target_rate_hz = 100.0
location = "00"
station_prefix = "G"
station_count = {count}
components = ["Z", "1", "2", "H"]
sensors = {{ Z = "geophone", 1 = "geophone", 2 = "geophone", H = "hydrophone" }}
{extra}
"""
    return parse_fields(text).get(field)


def test_traces_beyond_the_configured_stations_are_refused_before_any_work(
    tmp_path: Path,
) -> None:
    path = write_segy(tmp_path / "a.sgy", array_record(n_stations=2, seconds=4.0), 1000.0)
    share = tmp_path / "share"
    ensure_layout(share)
    blob = "grane/2026/11/23/a.sgy"
    with pytest.raises(SeedIdError) as info:
        decimate_file(path, blob, share, _config(""), _source(blob))
    message = str(info.value)
    for part in (blob, "trace 4", "station G0002", "G0001..G0001", "'station_count' = 1",
                 "raise key 'station_count'", "key 'channels'"):  # fmt: skip
        assert part in message, (part, message)
    assert isinstance(info.value, PERMANENT_ERRORS)
    # Nothing was written: no decimated file, no seam edges.
    assert not (share / blob_paths(blob).decimated("sgy")).exists()
    assert not any((share / STATE).rglob("*.*"))
    # The channel selection is the other way out: only the configured station's traces.
    _request, report = decimate_file(
        path, blob, share, _config('channels = ["0-3"]'), _source(blob)
    )
    assert report.traces == 4


def test_convert_refuses_too(tmp_path: Path) -> None:
    """A file decimated under a wider configuration, converted under a narrower one."""
    path = write_segy(tmp_path / "a.sgy", array_record(n_stations=2, seconds=4.0), 1000.0)
    share = tmp_path / "share"
    ensure_layout(share)
    blob = "grane/2026/11/23/a.sgy"
    request, _ = decimate_file(path, blob, share, _config("", count=2), _source(blob))
    with pytest.raises(SeedIdError, match=rf"^{re.escape(blob)}: field grane: trace 4 would "):
        convert_file(request, share, _config(""))
    assert not mseed_files(share, blob)


def test_header_station_outside_the_list_is_refused(tmp_path: Path) -> None:
    blob = "oseberg/2008/01/01/gaps.mseed"
    share = tmp_path / "share"
    ensure_layout(share)
    cfg = load_fields(FIELDS).get("oseberg")
    with pytest.raises(SeedIdError) as info:
        decimate_file(GAPS, blob, share, cfg, _source(blob))
    message = str(info.value)
    assert message.startswith(f"{blob}: field oseberg: trace 0 (BW.BGLD..EHE) has station 'BGLD'")
    assert "['OSE01', 'OSE02', 'OSE03', 'OSE04']" in message
    assert "add it to key 'stations'" in message


def test_refused_file_is_recorded_and_replays_once_the_configuration_is_fixed(
    pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared_code.cli import main

    blob = "grane/2026/11/23/wide.sgy"
    payload = write_segy(
        tmp_path / "wide.sgy", array_record(n_stations=2, seconds=4.0), 1000.0
    ).read_bytes()
    shipped = FIELDS.read_text()
    narrow = shipped.replace(
        'station_prefix = "G"\nstation_first = 1\nstation_count = 100',
        'station_prefix = "G"\nstation_first = 1\nstation_count = 1',
    )
    assert narrow != shipped
    config = tmp_path / "fields.toml"
    config.write_text(narrow)
    monkeypatch.setenv("FIELDS_CONFIG", str(config))
    get_settings.cache_clear()
    load_fields.cache_clear()

    event = pipeline.upload_and_deliver(blob, payload)
    (record,) = pipeline.failures()
    assert record["reason"].startswith(f"{blob}: field grane: trace 4 would be station G0002")
    assert record["event"]  # the event is kept: the record is replayable
    assert int(pipeline.queue.get_queue_properties().approximate_message_count) == 0
    ledger = Ledger.from_settings(get_settings())
    assert ledger.get("grane", blob, event["data"]["eTag"])["state"] == "failed"

    config.write_text(shipped)  # the operator raises station_count
    load_fields.cache_clear()
    assert main(["replay", "--field", "grane", "--failed"]) == 0
    assert pipeline.drain().processed == 1
    assert ledger.get("grane", blob, event["data"]["eTag"])["state"] == "converted"
    out = obspy.read(str(mseed_file(pipeline.share, blob)))
    assert {tr.stats.station for tr in out} == {"G0001", "G0002"}


# --- every id seed_id returns is served by the generated bindings -----------------------------

_STATIONS = ["OSE01", "OSE02", "ose03", " OSE04 ", "BGLD", "TOOLONG", "ÖSE1", "A-1", "", "9", "ßA"]
_LOCATIONS = ["", "00", "10", "01", "xx", "ABC", "é"]
_CHANNELS = ["", "HHZ", "EHN", "SHE", "HH1", "BDH", "hhz", "X", "LHQ", "Ω"]


def _random_config(rng: random.Random, n: int) -> str:
    header = rng.random() < 0.5
    components = rng.choice([["Z"], ["Z", "N", "E"], ["Z", "1", "2", "H"], ["H"]])
    sensor_codes = set(components) | set(rng.sample(sorted("ZNE12H"), rng.randint(0, 3)))
    sensors = ", ".join(
        f'{c} = "{rng.choice(["geophone", "hydrophone", "broadband", "short-period"])}"'
        for c in sorted(sensor_codes)
    )
    lines = [
        f"[fields.f{n}]",
        f'network = "X{n % 10}"',
        f"target_rate_hz = {rng.choice([1.0, 20.0, 100.0, 200.0, 250.0, 500.0, 2000.0])}",
        f'location = "{rng.choice(["", "00", "10"])}"',
        f'station_source = "{"header" if header else "index"}"',
        f'station_prefix = "{rng.choice(["", "S", "AB", "ABCD"])}"',
        f"station_first = {rng.randint(0, 4)}",  # with count <= 5: fits one digit
        f"station_count = {rng.randint(0 if header else 1, 5)}",
        f"components = {components!r}".replace("'", '"'),
        f"sensors = {{ {sensors} }}",
    ]
    if header:
        lines.append('stations = ["OSE01", "OSE03", "OSE04"]')
        if rng.random() < 0.5:
            lines.append('locations = ["01"]')
        if rng.random() < 0.5:
            lines.append('station_map = { "TOOLONG" = "OSE01", "ÖSE1" = "OSE03" }')
    return "\n".join(lines) + "\n"


def test_seed_id_returns_only_ids_the_bindings_serve(tmp_path: Path) -> None:
    """Property-style, over 60 random field configurations x 150 random traces and rates:
    ``seed_id`` either refuses with SeedIdError or returns a valid SEED id that the bindings
    generated from the same configuration cover."""
    rng = random.Random(9)
    refused = served = 0
    for n in range(60):
        text = _random_config(rng, n)
        cfg = parse_fields(text).get(f"f{n}")
        root = tmp_path / f"f{n}"
        seiscomp.write(root, seiscomp.render(parse_fields(text)))
        ids = []
        for _ in range(150):
            meta = TraceMeta(
                index=rng.randint(0, 30),
                network=rng.choice(["", "BW", "xx"]),
                station=rng.choice(_STATIONS),
                location=rng.choice(_LOCATIONS),
                channel=rng.choice(_CHANNELS),
            )
            # Anything the pipeline emits: the target rate (decimated), or a slower input
            # passed through unchanged, down to 0.001 Hz (log-uniform).
            rate = rng.choice(
                [cfg.target_rate_hz, cfg.target_rate_hz * 10 ** rng.uniform(-4.0, 0.0)]
            )
            try:
                sid = cfg.seed_id(meta, rate)
            except SeedIdError as exc:
                assert f"field f{n}: trace {meta.index}" in str(exc)
                assert "key '" in str(exc)  # names what to edit
                refused += 1
                continue
            assert SEED_ID.match(sid), (text, meta, sid)
            ids.append(sid)
        served += len(ids)
        assert seiscomp.uncovered(root, ids) == [], text
    assert refused > 1000 and served > 1000  # both ways were exercised


@pytest.mark.parametrize(
    ("station", "location", "expect"),
    [
        ("ose02", "", "XO.OSE02.00.EHZ"),  # lower case maps to upper case
        (" OSE02 ", "", "XO.OSE02.00.EHZ"),  # header padding
        ("OSE02", "01", "XO.OSE02.01.EHZ"),  # listed in 'locations'
        ("STATION7", "", "XO.OSE01.00.EHZ"),  # through 'station_map'
    ],
)
def test_header_codes_map_to_valid_seed_codes(station: str, location: str, expect: str) -> None:
    cfg = _header_config()
    assert cfg.seed_id(TraceMeta(0, station=station, location=location, channel="HHZ"), 200.0) == (
        expect
    )


@pytest.mark.parametrize(
    ("station", "location", "named"),
    [
        ("OSE2X", "", "not one of the configured ['OSE01', 'OSE02']; add it to key 'stations'"),
        (
            "LONGNAME",
            "",
            "not a SEED station code (1-5 ASCII letters/digits); map it to one "
            "with key 'station_map'",
        ),
        ("ØSE01", "", "key 'station_map'"),
        ("ßA", "", "key 'station_map'"),  # upper-cases to ASCII 'SSA', still not a SEED code
        ("OS-01", "", "key 'station_map'"),
        (
            "OSE01",
            "10",
            "location '10', not one of the configured ['00', '01']; add it to key 'locations'",
        ),
        ("OSE01", "ABC", "key 'locations'"),
    ],
)
def test_invalid_or_unconfigured_header_codes_are_refused(
    station: str, location: str, named: str
) -> None:
    cfg = _header_config()
    with pytest.raises(SeedIdError, match=re.escape(named)):
        cfg.seed_id(TraceMeta(3, station=station, location=location, channel="HHZ"), 200.0)


def _header_config() -> FieldConfig:
    return parse_fields("""
[fields.ose]
network = "XO"
target_rate_hz = 200.0
location = "00"
locations = ["01"]
station_source = "header"
stations = ["OSE01", "OSE02"]
station_map = { STATION7 = "OSE01" }
components = ["Z", "N", "E"]
sensors = { Z = "short-period", N = "short-period", E = "short-period" }
""").get("ose")


def test_a_knet_station_code_is_refused_then_mapped(tmp_path: Path) -> None:
    """ObsPy's K-NET test file carries station 'AKT013': six characters, no SEED station code.
    Refused at decimate (naming 'station_map'); mapped once the key says where it goes."""
    knet = Path(obspy.__file__).parent / "io" / "nied" / "tests" / "data" / "test.knet"
    field = """
[fields.knet]
network = "XK"
target_rate_hz = 50.0
location = "00"
station_source = "header"
stations = ["AKT13"]
components = ["Z"]
sensors = { Z = "accelerometer" }
"""
    share = tmp_path / "share"
    ensure_layout(share)
    blob = "knet/2026/11/23/test.knet"
    with pytest.raises(SeedIdError, match="has station 'AKT013', which is not a SEED station"):
        decimate_file(knet, blob, share, parse_fields(field).get("knet"), _source(blob))
    assert not any((share / STATE).rglob("*.*"))
    # The end-to-end run needs a decimated container that keeps a 6-character station code
    # (miniSEED 2 cannot): the naming is checked on the file's own trace headers.
    cfg = parse_fields(field + 'station_map = { AKT013 = "AKT13" }\n').get("knet")
    (trace,) = [t for block in read(knet, blob).blocks for t in block.traces]
    assert cfg.seed_id(trace, 50.0) == "XK.AKT13.00.SNZ"  # 50 Hz: band S; accelerometer: N
    check_seed_ids(blob, read(knet, blob).blocks, cfg, cfg.target_rate_hz)  # no refusal


TWO_NETWORKS = GAPS.parent / "constructedFileToTestReadViaRecords.mseed"  # BW.BGLD and OB.BGLD


def _header_field(station_map: str) -> FieldConfig:
    return parse_fields(
        f"""
[fields.hdr]
network = "XH"
target_rate_hz = 20.0
location = ""
station_source = "header"
stations = ["BGLD", "OBGLD"]
station_map = {{ {station_map} }}
components = ["Z", "N", "E"]
sensors = {{ Z = "short-period", N = "short-period", E = "short-period" }}
"""
    ).get("hdr")


def test_two_input_channels_never_become_one_stream(tmp_path: Path) -> None:
    """One station code under two networks (ObsPy's own test file): the header field would
    give both one SEED id, so the file is refused before any work, naming both input ids;
    mapped apart by "NET.STA" in station_map, both convert to their own id."""
    stream = obspy.read(str(TWO_NETWORKS))
    assert {tr.id for tr in stream} == {"BW.BGLD..EHE", "OB.BGLD..EHE"}
    share = tmp_path / "share"
    ensure_layout(share)
    blob = "hdr/two.mseed"
    cfg = _header_field("")
    with pytest.raises(PERMANENT_ERRORS) as info:
        decimate_file(TWO_NETWORKS, blob, share, cfg, _source(blob))
    message = str(info.value)
    assert message.startswith(f"{blob}: input channels BW.BGLD..EHE and OB.BGLD..EHE would both ")
    assert "SEED id XH.BGLD..SHE" in message
    assert not list((share / STATE).rglob("*"))  # refused before any seam edge was written

    cfg = _header_field('"OB.BGLD" = "OBGLD"')
    request, _ = decimate_file(TWO_NETWORKS, blob, share, cfg, _source(blob))
    report = convert_file(request, share, cfg)
    assert report.seed_ids == ["XH.BGLD..SHE", "XH.OBGLD..SHE"]
