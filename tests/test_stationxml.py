"""StationXML inventory (shared_code/stationxml.py, ``cli inventory``) against ObsPy's reader, the
FDSN StationXML schema ObsPy ships, the SeisComP bindings and what the pipeline really writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from obspy import read, read_inventory
from obspy.core.inventory import Channel, Inventory
from obspy.io.stationxml.core import validate_stationxml

from scripts.sample_data import array_record, write_mseed, write_segy
from shared_code import seiscomp
from shared_code.cli import main
from shared_code.fields import (
    SENSORS,
    FieldConfigError,
    FieldRegistry,
    band_code,
    load_fields,
    parse_fields,
)

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ROOT / "config" / "fields.toml"

#: A field with every metadata key: field-wide coordinates, one station's own, two instruments.
WITH_METADATA = """
[fields.snorre]
network = "XS"
target_rate_hz = 250.0
location = "00"
station_prefix = "S"
station_count = 3
components = ["Z", "1", "2", "H"]
sensors = { Z = "geophone", 1 = "geophone", 2 = "geophone", H = "hydrophone" }
coordinates = { latitude = 61.45, longitude = 2.15, elevation = -330.0 }

[fields.snorre.station_coordinates]
S0002 = { latitude = 61.4512, longitude = 2.1433, elevation = -331.5, depth = 0.5 }

[fields.snorre.instruments.Z]
description = "SM-24 10 Hz geophone"
sensitivity = 8.5e8
sensitivity_frequency_hz = 20.0
input_units = "m/s"

[fields.snorre.instruments.H]
description = "hydrophone"
sensitivity = 1.6e5
sensitivity_frequency_hz = 30.0
input_units = "Pa"

[fields.snorre.instruments.1]
description = "horizontal geophone, orientation unknown"

[fields.oseberg]
network = "XO"
target_rate_hz = 200.0
station_source = "header"
stations = ["OSE01"]
components = ["Z", "N", "E"]
sensors = { Z = "short-period", N = "short-period", E = "short-period" }
"""


def _write(tmp_path: Path, *args: str, fields: Path = FIELDS) -> tuple[int, Path]:
    out = tmp_path / "inventory.xml"
    code = main(["inventory", "--output", str(out), "--fields", str(fields), *args])
    return code, out


def _channels(inventory: Inventory) -> dict[str, Channel]:
    """SEED id -> ObsPy Channel."""
    return {
        f"{net.code}.{sta.code}.{cha.location_code}.{cha.code}": cha
        for net in inventory
        for sta in net
        for cha in sta
    }


@pytest.fixture(scope="module")
def registry() -> FieldRegistry:
    return load_fields(FIELDS)


def test_inventory_reads_back_validates_and_matches_the_bindings(
    registry: FieldRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, path = _write(tmp_path)
    assert code == 0
    # The shipped configuration has no coordinates: written anyway, with a warning.
    assert "warning:" in capsys.readouterr().err
    valid, errors = validate_stationxml(str(path))
    assert valid, errors
    inventory = read_inventory(str(path), format="STATIONXML")
    in_xml = set(_channels(inventory))
    bindings = tmp_path / "seiscomp"
    seiscomp.write(bindings, seiscomp.render(registry))
    for name, cfg in registry.fields.items():
        streams = cfg.streams()
        assert streams and set(streams) <= in_xml, name
        assert seiscomp.uncovered(bindings, streams) == [], name
    # Nothing more either: the inventory and streams.txt are one list.
    assert in_xml == set((bindings / seiscomp.STREAMS_FILE).read_text().split())
    assert len(in_xml) == len(inventory.get_contents()["channels"])  # no duplicate epochs


def test_one_field_only(tmp_path: Path, registry: FieldRegistry) -> None:
    code, path = _write(tmp_path, "--field", "oseberg")
    assert code == 0
    inventory = read_inventory(str(path))
    assert [net.code for net in inventory] == ["XO"]
    assert set(_channels(inventory)) == set(registry.get("oseberg").streams())
    assert _write(tmp_path, "--field", "nowhere")[0] == 2


def _process(field: str, share: Path, raw: Path) -> list[tuple[str, float]]:
    """Run ``cli process`` on one file; the (SEED id, Hz) of every trace it wrote."""
    assert main(["process", "--field", field, "--output", str(share), str(raw)]) == 0
    (written,) = [p for p in (share / "mseed").rglob("*.mseed") if raw.name in p.name]
    traces = [(tr.id, tr.stats.sampling_rate) for tr in read(str(written))]
    assert traces, written
    return traces


def test_sample_rates_are_what_the_pipeline_writes(tmp_path: Path) -> None:
    code, path = _write(tmp_path)
    assert code == 0
    channels = _channels(read_inventory(str(path)))
    share = tmp_path / "share"
    raw = tmp_path / "raw"
    raw.mkdir()
    # Decimated: 1000 Hz SEG-Y for the index fields, 500 Hz MiniSEED for the header field.
    decimated = {
        "grane": write_segy(raw / "g1000.sgy", array_record(2, 2.0, 1000.0), 1000.0),
        "snorre": write_segy(raw / "s1000.sgy", array_record(2, 2.0, 1000.0), 1000.0),
        "oseberg": write_mseed(raw / "o500.mseed", ["OSE01", "OSE04"], 500.0, 2.0),
    }
    for field, file in decimated.items():
        written = _process(field, share, file)
        assert written, field
        for seed_id, rate in written:
            assert channels[seed_id].sample_rate == rate, seed_id
    # Passed through at the target rate itself (snorre: 250 Hz, band D): the declared rate.
    at_target = write_segy(raw / "s250.sgy", array_record(1, 2.0, 250.0), 250.0)
    for seed_id, rate in _process("snorre", share, at_target):
        assert rate == 250.0 and channels[seed_id].sample_rate == rate
    # Passed through below the target in another band (grane: 40 Hz is band S, the target's
    # is E): the channel exists and declares no rate, since it is the uploaded file's.
    slow = write_segy(raw / "g40.sgy", array_record(1, 2.0, 40.0), 40.0)
    for seed_id, rate in _process("grane", share, slow):
        assert rate == 40.0 and seed_id.split(".")[3][0] == "S"
        channel = channels[seed_id]
        assert channel.sample_rate is None, seed_id
        assert "passed through" in channel.comments[0].value
    # Below the target in the target's own band (grane: 80 Hz, band E; SEG-Y holds the
    # interval in whole µs, so 12 500 µs is exactly 80 Hz): the channel declares
    # the decimated rate and says that slower pass-through files share it.
    mid = write_segy(raw / "g80.sgy", array_record(1, 2.0, 80.0), 80.0)
    for seed_id, rate in _process("grane", share, mid):
        channel = channels[seed_id]
        assert rate == 80.0 and channel.sample_rate == 100.0
        assert "own rate" in channel.comments[0].value


def test_configured_metadata_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fields = tmp_path / "fields.toml"
    fields.write_text(WITH_METADATA)
    code, path = _write(tmp_path, fields=fields)
    assert code == 0
    # Only oseberg's station is unlocated: named in the warning.
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert "1 station(s)" in warning and "XO.OSE01" in warning
    assert validate_stationxml(str(path))[0]
    inventory = read_inventory(str(path))
    channels = _channels(inventory)
    z = channels["XS.S0001.00.DPZ"]
    sensitivity = z.response.instrument_sensitivity
    # ObsPy writes floats as "%s" % x (obspy/io/stationxml/core.py, _float_to_str), the shortest
    # string that reads back to the same double: equality, not a tolerance.
    assert (sensitivity.value, sensitivity.frequency) == (8.5e8, 20.0)
    assert (sensitivity.input_units, sensitivity.output_units) == ("m/s", "count")
    assert z.sensor.description == "SM-24 10 Hz geophone"
    assert (z.azimuth, z.dip) == (0.0, -90.0)
    hydro = channels["XS.S0003.00.DDH"].response.instrument_sensitivity
    assert (hydro.value, hydro.frequency, hydro.input_units) == (1.6e5, 30.0, "Pa")
    horizontal = channels["XS.S0001.00.DP1"]
    assert horizontal.response is None
    assert horizontal.sensor.description.startswith("horizontal")
    assert horizontal.azimuth is None  # "1": no fixed direction
    # Coordinates: the field's, a station's own, and the marked placeholder.
    stations = {sta.code: sta for net in inventory for sta in net}
    assert (stations["S0001"].latitude, stations["S0001"].elevation) == (61.45, -330.0)
    own = channels["XS.S0002.00.DPZ"]
    assert (own.latitude, own.longitude, own.elevation, own.depth) == (
        61.4512, 2.1433, -331.5, 0.5,
    )  # fmt: skip
    assert not stations["S0001"].comments
    assert (stations["OSE01"].latitude, stations["OSE01"].longitude) == (0.0, 0.0)
    assert "not configured" in stations["OSE01"].comments[0].value
    # Refused outright when coordinates are required.
    (tmp_path / "strict").mkdir()
    assert _write(tmp_path / "strict", "--require-coordinates", fields=fields)[0] == 2
    assert not (tmp_path / "strict" / "inventory.xml").exists()
    assert _write(tmp_path / "strict", "--require-coordinates", "--field", "snorre",
                  fields=fields)[0] == 0  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('coordinates = { latitude = 95.0, longitude = 2.0, elevation = 0.0 }',
         "key 'coordinates.latitude' 95.0 is outside"),
        ('coordinates = { latitude = 61.0, longitude = 2.0 }',
         "key 'coordinates.elevation' is missing"),
        ('coordinates = { latitude = 61.0, longitude = 2.0, elevation = "deep" }',
         "key 'coordinates.elevation' must be a number"),
        ('coordinates = { latitude = 61.0, longitude = 2.0, elevation = 0.0, height = 1 }',
         "key 'coordinates' has unknown keys ['height']"),
        ('station_coordinates = { S0009 = { latitude = 1.0, longitude = 2.0, elevation = 0.0 } }',
         "key 'station_coordinates.S0009': no such station"),
        ('instruments = { X = { description = "x" } }',
         "key 'instruments.X': component 'X' has no entry in 'sensors'"),
        ('instruments = { Z = { sensitivity = 1e9, input_units = "m/s" } }',
         "key 'instruments.Z.sensitivity_frequency_hz' is missing"),
        ('instruments = { Z = { sensitivity = 1e9, sensitivity_frequency_hz = 125.0, '
         'input_units = "m/s" } }',
         "key 'instruments.Z.sensitivity_frequency_hz' must lie strictly between"),
        ('instruments = { Z = { sensitivity = 1e9, sensitivity_frequency_hz = 10.0, '
         'input_units = "V" } }',
         "key 'instruments.Z.input_units' 'V' is not one of"),
        ('instruments = { Z = { sensitivity = -1.0, sensitivity_frequency_hz = 10.0, '
         'input_units = "m/s" } }',
         "key 'instruments.Z.sensitivity' -1.0 is outside"),
        ('instruments = { Z = { input_units = "m/s" } }',
         "key 'instruments.Z.sensitivity' is missing"),
    ],
)  # fmt: skip
def test_bad_metadata_is_refused_naming_the_field_and_key(extra: str, message: str) -> None:
    # The snorre table alone, without its own metadata keys.
    base = WITH_METADATA.split("coordinates = {", maxsplit=1)[0]
    with pytest.raises(FieldConfigError) as err:
        parse_fields(base.replace("station_count = 3\n", f"station_count = 3\n{extra}\n"))
    assert str(err.value).startswith("field snorre: ") and message in str(err.value)


def test_every_field_of_the_shipped_configuration_has_one_rate_per_target_band(
    registry: FieldRegistry, tmp_path: Path
) -> None:
    """The declared rate is the target on exactly the target's band codes; other channels
    declare none, and no channel declares a rate its band code could not carry."""
    code, path = _write(tmp_path)
    assert code == 0
    channels = _channels(read_inventory(str(path)))
    for cfg in registry.fields.values():
        declared = {channels[s].sample_rate for s in cfg.streams()}
        assert declared == {cfg.target_rate_hz, None}, cfg.name
        for seed_id in cfg.streams():
            rate = channels[seed_id].sample_rate
            channel = seed_id.split(".")[3]
            if rate is not None:
                long_period = SENSORS[cfg.sensors[channel[2]]][1]
                assert band_code(rate, long_period) == channel[0], seed_id
