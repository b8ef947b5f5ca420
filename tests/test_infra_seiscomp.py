"""SeisComP station bindings (shared_code/seiscomp.py) against the field configuration and the
SEED ids the converter emits for the sample data."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest

from shared_code import seiscomp
from shared_code.fields import FieldRegistry, load_fields, parse_fields
from shared_code.share_layout import MSEED

ROOT = Path(__file__).resolve().parent.parent
FIELDS = ROOT / "config" / "fields.toml"
# The regular expression SeisComP's seedlink module applies to each line of etc/key/station_*.
SEISCOMP_BINDING_LINE = re.compile(r"(?P<module>[A-Za-z0-9_\.-]+)(:(?P<profile>[A-Za-z0-9_-]+))?$")


@pytest.fixture(scope="module")
def registry() -> FieldRegistry:
    return load_fields(FIELDS)


@pytest.fixture
def rendered(registry: FieldRegistry, tmp_path: Path) -> Path:
    out = tmp_path / "seiscomp"
    seiscomp.write(out, seiscomp.render(registry))
    return out


def _sample_seed_ids(registry: FieldRegistry, tmp_path: Path) -> dict[str, set[str]]:
    """SEED ids of the sample data, per field, as the converter names them (target rate)."""
    from scripts.sample_data import make_samples
    from shared_code.formats import read

    ids: dict[str, set[str]] = {}
    for blob, path in make_samples(tmp_path / "samples").items():
        field = blob.split("/", 1)[0]
        cfg = registry.get(field)
        recording = read(path)
        traces = [trace for block in recording.blocks for trace in block.traces]
        keep = set(cfg.select(len(traces)))
        ids[field] = {
            cfg.seed_id(trace, cfg.target_rate_hz) for trace in traces if trace.index in keep
        }
    return ids


def test_bindings_cover_every_seed_id_of_the_sample_data(
    registry: FieldRegistry, rendered: Path, tmp_path: Path
) -> None:
    emitted = _sample_seed_ids(registry, tmp_path)
    assert set(emitted) == {"snorre", "oseberg"}
    assert len(emitted["snorre"]) == 96  # 24 stations x 4 components in the sample SEG-Y
    assert len(emitted["oseberg"]) == 12  # 4 stations x Z N E in the sample MiniSEED
    everything = set().union(*emitted.values())
    assert seiscomp.uncovered(rendered, everything) == []


def test_bindings_cover_every_stream_the_configuration_can_produce(
    registry: FieldRegistry, rendered: Path
) -> None:
    for name, cfg in registry.fields.items():
        streams = cfg.streams()
        assert streams, name
        assert seiscomp.uncovered(rendered, streams) == [], name
    listed = (rendered / seiscomp.STREAMS_FILE).read_text().split()
    assert sorted(listed) == sorted(s for cfg in registry.fields.values() for s in cfg.streams())


def test_key_files_have_the_seiscomp_format(registry: FieldRegistry, rendered: Path) -> None:
    key_dir = rendered / "etc" / "key"
    stations = seiscomp.stations(registry)
    files = sorted(p.name for p in key_dir.glob("station_*"))
    assert files == sorted(f"station_{s.network}_{s.code}" for s in stations)
    for path in key_dir.glob("station_*"):
        lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
        assert len(lines) == 1, path
        match = SEISCOMP_BINDING_LINE.match(lines[0])
        assert match, lines[0]
        assert match["module"] == "seedlink"
        assert match["profile"] == seiscomp.PROFILE
    profile = seiscomp.read_profile(rendered, seiscomp.PROFILE)
    assert profile == {
        "sources": "mseedscan",
        "sources.mseedscan.dir": str(seiscomp.DEFAULT_SHARE_MOUNT / MSEED),
    }


def test_uncovered_reports_missing_stations_and_streams(rendered: Path) -> None:
    assert seiscomp.uncovered(rendered, ["ZZ.NOPE.00.HHZ"]) == ["ZZ.NOPE.00.HHZ"]
    # A known station, but a stream the configuration never produces.
    assert seiscomp.uncovered(rendered, ["XS.S0001.00.XXZ"]) == ["XS.S0001.00.XXZ"]


def test_render_is_deterministic_and_write_removes_stale_stations(
    registry: FieldRegistry, tmp_path: Path
) -> None:
    assert seiscomp.render(registry) == seiscomp.render(registry)
    out = tmp_path / "out"
    (out / "etc" / "key").mkdir(parents=True)
    stale = out / "etc" / "key" / "station_XX_OLD01"
    stale.write_text("seedlink:ccs\n")
    seiscomp.write(out, seiscomp.render(registry))
    assert not stale.exists()


def test_two_fields_producing_one_station_are_rejected() -> None:
    text = (
        FIELDS.read_text()
        .replace('network = "XG"', 'network = "XS"')
        .replace('station_prefix = "G"', 'station_prefix = "S"')
    )
    with pytest.raises(seiscomp.BindingError, match=r"grane and snorre both produce station XS\."):
        seiscomp.render(parse_fields(text))


def test_mseed_dir_must_be_absolute(registry: FieldRegistry) -> None:
    with pytest.raises(seiscomp.BindingError):
        seiscomp.render(registry, PurePosixPath("mounts/ccs/mseed"))


def test_cli_writes_the_bindings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = seiscomp.main(
        ["--fields", str(FIELDS), "--out", str(out), "--share-mount", "/srv/share"]
    )
    assert code == 0
    assert "station bindings" in capsys.readouterr().out
    profile = seiscomp.read_profile(out, seiscomp.PROFILE)
    assert profile["sources.mseedscan.dir"] == f"/srv/share/{MSEED}"
    assert seiscomp.read_bindings(out)


def test_cli_reports_a_bad_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "fields.toml"
    bad.write_text("[fields.x]\nnetwork = 'toolong'\n")
    assert seiscomp.main(["--fields", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err
