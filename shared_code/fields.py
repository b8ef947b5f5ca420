"""Field configuration: which fields exist and how each trace becomes a SEED id.

The configuration is data (``config/fields.toml``, path in the FIELDS_CONFIG setting), edited
by operators and validated on load; every error names the field and the key. SEED ids follow
the FDSN conventions: band code from the sample rate and the sensor's corner period,
instrument code from the sensor type, orientation code from the component.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared_code.waveforms import TraceMeta

#: sensor type -> (instrument code, long-period band class?)
SENSORS: dict[str, tuple[str, bool]] = {
    "geophone": ("P", False),
    "hydrophone": ("D", False),
    "accelerometer": ("N", False),
    "short-period": ("H", False),
    "broadband": ("H", True),
}
ORIENTATIONS = frozenset("ZNE123HUVW")
_NETWORK = re.compile(r"^[A-Z0-9]{1,2}$")
_LOCATION = re.compile(r"^[A-Z0-9]{0,2}$")
_STATION = re.compile(r"^[A-Z0-9]{1,5}$")
_PREFIX = re.compile(r"^[A-Z]{0,4}$")


class FieldConfigError(ValueError):
    """The field configuration is invalid; the message names the field and the key."""


class UnknownFieldError(LookupError):
    """A blob names a field that the configuration does not know."""


@dataclass(frozen=True)
class FieldConfig:
    name: str
    network: str
    target_rate_hz: float
    location: str
    station_source: str
    station_prefix: str
    station_first: int
    components: tuple[str, ...]
    sensors: Mapping[str, str]
    channels: tuple[int, ...] | None
    station_count: int
    stations: tuple[str, ...]

    def streams(self, sampling_rate_hz: float | None = None) -> list[str]:
        """Every SEED id this field can produce at a rate (Hz; default: the target rate).

        Used to create SeisComP's station bindings: index-derived stations are numbered
        ``station_first .. station_first + station_count - 1``; header-derived ones are listed
        in ``stations``.
        """
        rate = self.target_rate_hz if sampling_rate_hz is None else sampling_rate_hz
        n_comp = len(self.components)
        ids = [self.seed_id(TraceMeta(index=i), rate) for i in range(self.station_count * n_comp)]
        for station in self.stations:
            for i, comp in enumerate(self.components):
                meta = TraceMeta(index=i, station=station, location=self.location, channel=comp)
                ids.append(self.seed_id(meta, rate))
        return sorted(set(ids))

    def select(self, n_traces: int) -> list[int]:
        """Indices of the traces to keep (0-based), from the channel selection."""
        if self.channels is None:
            return list(range(n_traces))
        return [i for i in self.channels if i < n_traces]

    def seed_id(self, trace: TraceMeta, sampling_rate_hz: float) -> str:
        """NET.STA.LOC.CHA for a trace at the given output rate (Hz)."""
        station, location, component = self._station_location_component(trace)
        sensor = self.sensors.get(component)
        if sensor is None:
            raise FieldConfigError(
                f"field {self.name}: key 'sensors' has no sensor for component {component!r} "
                f"(trace {trace.index})"
            )
        instrument, long_period = SENSORS[sensor]
        channel = f"{band_code(sampling_rate_hz, long_period)}{instrument}{component}"
        return f"{self.network}.{station}.{location}.{channel}"

    def _station_location_component(self, trace: TraceMeta) -> tuple[str, str, str]:
        if self.station_source == "header" and trace.station:
            station = trace.station.strip().upper()[:5]
            location = (trace.location or self.location).strip().upper()
            component = (trace.channel[-1:] or "Z").upper()
            if component not in self.sensors:
                component = self.components[trace.index % len(self.components)]
            return station, location, component
        number = self.station_first + trace.index // len(self.components)
        width = 5 - len(self.station_prefix)
        if number >= 10**width:
            raise FieldConfigError(
                f"field {self.name}: key 'station_prefix' leaves {width} digits, too few for "
                f"station {number} (trace {trace.index})"
            )
        station = f"{self.station_prefix}{number:0{width}d}"
        return station, self.location, self.components[trace.index % len(self.components)]


def band_code(sampling_rate_hz: float, long_period: bool) -> str:
    """FDSN band code for a sample rate (Hz) and the sensor's corner period class."""
    rate = sampling_rate_hz
    table = (
        (5000.0, "J", "J"),
        (1000.0, "F", "G"),
        (250.0, "C", "D"),
        (80.0, "H", "E"),
        (10.0, "B", "S"),
    )
    for floor, lp, sp in table:
        if rate >= floor:
            return lp if long_period else sp
    if rate > 1.0:
        return "M"
    if rate >= 0.5:
        return "L"
    if rate >= 0.05:
        return "V"
    return "U"


def _parse_channels(name: str, value: Any) -> tuple[int, ...] | None:
    if value is None or value == []:
        return None
    if not isinstance(value, list):
        raise FieldConfigError(f"field {name}: key 'channels' must be a list")
    out: list[int] = []
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            out.append(item)
        elif isinstance(item, str) and re.fullmatch(r"\d+-\d+", item):
            first, last = (int(x) for x in item.split("-"))
            if last < first:
                raise FieldConfigError(f"field {name}: key 'channels' range {item!r} is reversed")
            out.extend(range(first, last + 1))
        else:
            raise FieldConfigError(
                f"field {name}: key 'channels' item {item!r} is not an index or 'first-last' range"
            )
    return tuple(sorted(set(out)))


def _field(name: str, raw: Mapping[str, Any]) -> FieldConfig:
    known = set(FieldConfig.__dataclass_fields__) - {"name"}
    unknown = set(raw) - known
    if unknown:
        raise FieldConfigError(f"field {name}: unknown keys {sorted(unknown)}")

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in raw:
            raise FieldConfigError(f"field {name}: key '{key}' is missing")
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise FieldConfigError(f"field {name}: key '{key}' has the wrong type ({value!r})")
        return value

    network = need("network", str)
    if not _NETWORK.match(network):
        raise FieldConfigError(f"field {name}: key 'network' {network!r} is not 1-2 letters/digits")
    rate = float(need("target_rate_hz", (int, float)))
    if not 0 < rate <= 100_000:
        raise FieldConfigError(f"field {name}: key 'target_rate_hz' {rate} out of range")
    location = raw.get("location", "")
    if not isinstance(location, str) or not _LOCATION.match(location):
        raise FieldConfigError(
            f"field {name}: key 'location' {location!r} is not 0-2 letters/digits"
        )
    source = raw.get("station_source", "index")
    if source not in ("index", "header"):
        raise FieldConfigError(f"field {name}: key 'station_source' must be 'index' or 'header'")
    prefix = raw.get("station_prefix", "S")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise FieldConfigError(f"field {name}: key 'station_prefix' {prefix!r} must be 0-4 letters")
    first = raw.get("station_first", 1)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise FieldConfigError(f"field {name}: key 'station_first' must be a whole number >= 0")
    components = need("components", list)
    if not components or any(not isinstance(c, str) or c not in ORIENTATIONS for c in components):
        raise FieldConfigError(
            f"field {name}: key 'components' must list orientation codes "
            f"from {sorted(ORIENTATIONS)}"
        )
    sensors = need("sensors", dict)
    sensors = {str(k): v for k, v in sensors.items()}
    for comp in components:
        if comp not in sensors:
            raise FieldConfigError(
                f"field {name}: key 'sensors' has no entry for component {comp!r}"
            )
    for comp, sensor in sensors.items():
        if sensor not in SENSORS:
            raise FieldConfigError(
                f"field {name}: key 'sensors' component {comp!r}: unknown sensor {sensor!r} "
                f"(known: {', '.join(SENSORS)})"
            )
    station_count = raw.get("station_count", 0)
    if isinstance(station_count, bool) or not isinstance(station_count, int) or station_count < 0:
        raise FieldConfigError(f"field {name}: key 'station_count' must be a whole number >= 0")
    stations = raw.get("stations", [])
    if not isinstance(stations, list) or any(
        not isinstance(st, str) or not _STATION.match(st) for st in stations
    ):
        raise FieldConfigError(f"field {name}: key 'stations' must list 1-5 letter/digit codes")
    if source == "index" and station_count == 0:
        raise FieldConfigError(
            f"field {name}: key 'station_count' is required with station_source 'index'"
        )
    if source == "header" and not stations:
        raise FieldConfigError(
            f"field {name}: key 'stations' is required with station_source 'header'"
        )
    return FieldConfig(
        name=name,
        network=network,
        target_rate_hz=rate,
        location=location,
        station_source=source,
        station_prefix=prefix,
        station_first=first,
        components=tuple(components),
        sensors=sensors,
        channels=_parse_channels(name, raw.get("channels")),
        station_count=station_count,
        stations=tuple(stations),
    )


@dataclass(frozen=True)
class FieldRegistry:
    fields: Mapping[str, FieldConfig]

    def get(self, name: str) -> FieldConfig:
        try:
            return self.fields[name]
        except KeyError:
            known = ", ".join(sorted(self.fields)) or "none"
            raise UnknownFieldError(f"unknown field {name!r} (configured: {known})") from None


def parse_fields(text: str, source: str = "field configuration") -> FieldRegistry:
    """Parse and validate the TOML text of a field configuration."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FieldConfigError(f"{source}: not valid TOML: {exc}") from None
    fields = raw.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise FieldConfigError(f"{source}: no [fields.<name>] tables")
    out = {}
    for name, body in fields.items():
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", name):
            raise FieldConfigError(f"field {name}: name must be lowercase letters, digits, - or _")
        if not isinstance(body, dict):
            raise FieldConfigError(f"field {name}: must be a table")
        out[name] = _field(name, body)
    return FieldRegistry(out)


@lru_cache(maxsize=8)
def load_fields(path: Path) -> FieldRegistry:
    """Load and validate the field configuration file (cached per path)."""
    return parse_fields(path.read_text(encoding="utf-8"), source=str(path))
