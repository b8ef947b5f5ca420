"""Field configuration: validated on load, FDSN SEED ids."""

from pathlib import Path

import pytest

from shared_code.fields import (
    FieldConfigError,
    UnknownFieldError,
    band_code,
    load_fields,
    parse_fields,
)
from shared_code.waveforms import TraceMeta

ROOT = Path(__file__).resolve().parent.parent
GOOD = """
[fields.test]
network = "XT"
target_rate_hz = 100.0
location = "00"
station_prefix = "T"
station_count = 10
components = ["Z", "1", "2", "H"]
sensors = { Z = "geophone", 1 = "geophone", 2 = "geophone", H = "hydrophone" }
"""


def test_sample_configuration_loads() -> None:
    registry = load_fields(ROOT / "config" / "fields.toml")
    assert {"snorre", "grane", "oseberg"} <= set(registry.fields)
    with pytest.raises(UnknownFieldError, match="unknown field 'troll'"):
        registry.get("troll")


def test_seed_ids_by_index() -> None:
    cfg = parse_fields(GOOD).get("test")
    ids = [cfg.seed_id(TraceMeta(index=i), 100.0) for i in range(5)]
    assert ids == ["XT.T0001.00.EPZ", "XT.T0001.00.EP1", "XT.T0001.00.EP2", "XT.T0001.00.EDH",
                   "XT.T0002.00.EPZ"]  # fmt: skip


def test_seed_ids_from_header() -> None:
    cfg = load_fields(ROOT / "config" / "fields.toml").get("oseberg")
    meta = TraceMeta(index=4, station="ose02", location="", channel="HHN")
    assert cfg.seed_id(meta, 200.0) == "XO.OSE02.00.EHN"
    assert "XO.OSE02.00.EHN" in cfg.streams()


@pytest.mark.parametrize(
    ("rate", "long_period", "code"),
    [(2000, False, "G"), (1000, True, "F"), (500, False, "D"), (250, False, "D"),
     (249.9, False, "E"), (100, True, "H"), (50, False, "S"), (20, True, "B"), (5, False, "M"),
     (1, False, "L")],
)  # fmt: skip
def test_band_codes(rate: float, long_period: bool, code: str) -> None:
    assert band_code(rate, long_period) == code


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s.replace('network = "XT"', 'network = "TOOLONG"'), "key 'network'"),
        (
            lambda s: s.replace("target_rate_hz = 100.0", "target_rate_hz = -1"),
            "key 'target_rate_hz'",
        ),
        (lambda s: s.replace('H = "hydrophone"', 'H = "seismometer9"'), "key 'sensors'"),
        (lambda s: s.replace('"Z", "1", "2", "H"', '"Q"'), "key 'components'"),
        (lambda s: s.replace("station_count = 10", ""), "key 'station_count'"),
        (lambda s: s + "bogus = 1\n", "unknown keys"),
        (lambda s: s + 'channels = ["5-2"]\n', "key 'channels'"),
        (lambda s: s.replace("network = ", "network == "), "not valid TOML"),
        (
            lambda s: s.replace('H = "hydrophone"', 'H = "hydrophone", x = "geophone"'),
            "key 'sensors' component 'x' is not an orientation code",
        ),
        (
            lambda s: s.replace('station_prefix = "T"', 'station_prefix = "TTTT"'),
            "key 'station_prefix' 'TTTT' leaves 1 digits, too few for station 10",
        ),
        (lambda s: s + 'locations = ["01"]\n', "apply to station_source 'header'"),
        (lambda s: s + 'station_map = { A = "B" }\n', "key 'station_map'"),
    ],
)
def test_invalid_configuration_names_field_and_key(edit, named: str) -> None:
    with pytest.raises(FieldConfigError, match=named) as info:
        parse_fields(edit(GOOD))
    assert "test" in str(info.value) or "TOML" in str(info.value)


def test_channel_selection() -> None:
    cfg = parse_fields(GOOD + 'channels = [0, "4-6", 9]\n').get("test")
    assert cfg.select(8) == [0, 4, 5, 6]


def test_streams_cover_every_rate_up_to_the_target() -> None:
    """A file at or below the target rate passes through unchanged: its band code differs."""
    cfg = load_fields(ROOT / "config" / "fields.toml").get("snorre")
    at_target = cfg.streams(250.0)
    assert {s.rsplit(".", 1)[1][0] for s in at_target} == {"D"}
    every = cfg.streams()
    bands = {s.rsplit(".", 1)[1][0] for s in every}
    assert bands == {"D", "E", "S", "M", "L", "V", "U"}  # 250 Hz down to below 0.05 Hz
    assert set(at_target) < set(every)
    assert len(every) == 7 * 100 * 4  # bands x stations x components
