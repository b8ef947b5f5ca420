"""Field configuration: which fields exist and how each trace becomes a SEED id.

The configuration is data (``config/fields.toml``, path in the FIELDS_CONFIG setting), edited
by operators and validated on load; every error names the field and the key. SEED ids follow
the FDSN conventions: band code from the sample rate and the sensor's corner period,
instrument code from the sensor type, orientation code from the component.

:meth:`FieldConfig.seed_id` returns only ids that :meth:`FieldConfig.streams` lists (the
SeisComP bindings are generated from that list); any other trace raises :class:`SeedIdError`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared_code.field_metadata import (
    Coordinates,
    Instrument,
    MetadataError,
    parse_coordinates,
    parse_instruments,
    parse_station_coordinates,
)
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


class SeedIdError(FieldConfigError):
    """A trace would get a SEED id outside what the field's configuration (and so SeisComP's
    bindings, generated from it) covers: a station beyond the configured ones, a location not
    configured, or a header code that is no valid SEED code. Permanent: once the named key is
    edited, a replay of the file succeeds."""


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
    locations: tuple[str, ...] = ()
    station_map: Mapping[str, str] = dataclass_field(default_factory=dict)
    #: Optional station metadata for StationXML (shared_code.field_metadata); never used to name.
    coordinates: Coordinates | None = None
    station_coordinates: Mapping[str, Coordinates] = dataclass_field(default_factory=dict)
    instruments: Mapping[str, Instrument] = dataclass_field(default_factory=dict)

    def station_codes(self) -> list[str]:
        """Every station code the field can emit: numbered ones, then listed ``stations``."""
        numbered = [self._numbered(i) for i in range(self.station_count)]
        return numbered + [st for st in self.stations if st not in numbered]

    def streams(self, sampling_rate_hz: float | None = None) -> list[str]:
        """Every SEED id this field can produce at a rate (Hz; default: at any rate up to the
        target rate, since a file already at or below it passes through unchanged).

        Used to create SeisComP's station bindings, so it enumerates exactly what
        :meth:`seed_id` accepts: numbered stations ``station_first ..
        station_first + station_count - 1`` (``index``, and ``header`` traces without a station)
        with ``components`` at ``location``; with ``header``, also every ``stations`` code at
        ``location`` and each of ``locations``, with every component that has a sensor.
        """
        rates = [self.target_rate_hz] if sampling_rate_hz is None else [sampling_rate_hz]
        if sampling_rate_hz is None:
            rates += [r for r in _BAND_EDGES_HZ if r <= self.target_rate_hz]
        ids: set[str] = set()
        numbered = [self._numbered(i) for i in range(self.station_count)]
        header_codes = self.components + tuple(c for c in self.sensors if c not in self.components)
        plans: list[tuple[list[str], tuple[str, ...], tuple[str, ...]]] = [
            (numbered, (self.location,), self.components)
        ]
        if self.station_source == "header":
            plans.append((list(self.stations), self._locations(), header_codes))
        for rate in rates:
            for stations, locations, components in plans:
                for comp in components:
                    channel = self._channel(comp, rate)
                    ids.update(
                        f"{self.network}.{sta}.{loc}.{channel}"
                        for sta in stations
                        for loc in locations
                    )
        return sorted(ids)

    def select(self, n_traces: int) -> list[int]:
        """Channel numbers (``TraceMeta.index``, 0-based) to keep, from the channel selection;
        every segment of a kept channel is kept."""
        if self.channels is None:
            return list(range(n_traces))
        return [i for i in self.channels if i < n_traces]

    def seed_id(self, trace: TraceMeta, sampling_rate_hz: float) -> str:
        """NET.STA.LOC.CHA for a trace at the given output rate (Hz).

        Raises :class:`SeedIdError` for a trace whose id :meth:`streams` (and so the SeisComP
        bindings) would not hold: the message names the trace, the station it would get, what
        is configured, and the key to edit.
        """
        station, location, component = self._station_location_component(trace)
        return f"{self.network}.{station}.{location}.{self._channel(component, sampling_rate_hz)}"

    def _channel(self, component: str, sampling_rate_hz: float) -> str:
        instrument, long_period = SENSORS[self.sensors[component]]
        return f"{band_code(sampling_rate_hz, long_period)}{instrument}{component}"

    def _locations(self) -> tuple[str, ...]:
        return (self.location, *(loc for loc in self.locations if loc != self.location))

    def _numbered(self, number: int) -> str:
        """The code of the field's ``number``-th numbered station (0-based)."""
        width = 5 - len(self.station_prefix)
        return f"{self.station_prefix}{self.station_first + number:0{width}d}"

    def _station_location_component(self, trace: TraceMeta) -> tuple[str, str, str]:
        what = _describe(trace)
        if self.station_source == "header" and trace.station.strip():
            station = self._header_station(trace.station, what, trace.network)
            location = trace.location.strip().upper() or self.location
            if not trace.location.isascii() or location not in self._locations():
                raise SeedIdError(
                    f"field {self.name}: {what} has location {trace.location!r}, not one of the "
                    f"configured {list(self._locations())}; add it to key 'locations'"
                )
            component = trace.channel.strip()[-1:].upper()
            if component not in self.sensors:
                component = self.components[trace.index % len(self.components)]
            return station, location, component
        n_comp = len(self.components)
        number = trace.index // n_comp
        if number >= self.station_count:
            configured = (
                f"{self._numbered(0)}..{self._numbered(self.station_count - 1)}"
                if self.station_count
                else "none"
            )
            raise SeedIdError(
                f"field {self.name}: {what} would be station {self._numbered(number)}, beyond "
                f"the configured numbered stations ({configured}: key 'station_count' = "
                f"{self.station_count}, {n_comp} components each); raise key 'station_count' "
                "or narrow key 'channels'"
            )
        return self._numbered(number), self.location, self.components[trace.index % n_comp]

    def _header_station(self, raw: str, what: str, network: str = "") -> str:
        code = raw.strip()
        # "NET.STA" first: one file may carry one station code under two networks.
        mapped = self.station_map.get(f"{network.strip()}.{code}", self.station_map.get(code))
        if mapped is not None:
            return mapped
        upper = code.upper()
        # ASCII first: str.upper() turns some non-ASCII letters into ASCII ones ('ß' -> 'SS').
        if not (code.isascii() and _STATION.fullmatch(upper)):
            raise SeedIdError(
                f"field {self.name}: {what} has station {raw!r}, which is not a SEED station "
                "code (1-5 ASCII letters/digits); map it to one with key 'station_map'"
            )
        if upper not in self.stations:
            raise SeedIdError(
                f"field {self.name}: {what} has station {upper!r}, not one of the configured "
                f"{list(self.stations)}; add it to key 'stations'"
            )
        return upper


def _describe(trace: TraceMeta) -> str:
    """How an error names a trace: its index, and its header codes where it has them."""
    codes = ".".join((trace.network, trace.station, trace.location, trace.channel))
    return f"trace {trace.index}" + (f" ({codes})" if codes.strip(".") else "")


#: FDSN band codes by sample rate (Hz): (lowest rate, long-period code, short-period code).
_BANDS = (
    (5000.0, "J", "J"),
    (1000.0, "F", "G"),
    (250.0, "C", "D"),
    (80.0, "H", "E"),
    (10.0, "B", "S"),
)
#: Below the table: M above 1 Hz, L from 0.5 Hz, V from 0.05 Hz, U below.
_LOW_BANDS = ((1.0, "M"), (0.5, "L"), (0.05, "V"))
#: The edges of every band's rate range (Hz), each with a rate just below it: with the target
#: rate, they reach every band code of the rates up to the target.
_BAND_EDGES_HZ = tuple(
    r
    for edge in (*(b[0] for b in _BANDS), *(b[0] for b in _LOW_BANDS))
    for r in (edge, edge * 0.99)
)


def band_code(sampling_rate_hz: float, long_period: bool) -> str:
    """FDSN band code for a sample rate (Hz) and the sensor's corner period class."""
    rate = sampling_rate_hz
    for floor, lp, sp in _BANDS:
        if rate >= floor:
            return lp if long_period else sp
    if rate > _LOW_BANDS[0][0]:
        return _LOW_BANDS[0][1]
    for floor, code in _LOW_BANDS[1:]:
        if rate >= floor:
            return code
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
        if comp not in ORIENTATIONS:
            raise FieldConfigError(
                f"field {name}: key 'sensors' component {comp!r} is not an orientation code "
                f"from {sorted(ORIENTATIONS)}"
            )
        if sensor not in SENSORS:
            raise FieldConfigError(
                f"field {name}: key 'sensors' component {comp!r}: unknown sensor {sensor!r} "
                f"(known: {', '.join(SENSORS)})"
            )
    station_count = raw.get("station_count", 0)
    if isinstance(station_count, bool) or not isinstance(station_count, int) or station_count < 0:
        raise FieldConfigError(f"field {name}: key 'station_count' must be a whole number >= 0")
    width = 5 - len(prefix)
    if first + station_count - 1 >= 10**width:
        raise FieldConfigError(
            f"field {name}: key 'station_prefix' {prefix!r} leaves {width} digits, too few for "
            f"station {first + station_count - 1} (station_first + station_count - 1)"
        )
    stations = raw.get("stations", [])
    if not isinstance(stations, list) or any(
        not isinstance(st, str) or not _STATION.match(st) for st in stations
    ):
        raise FieldConfigError(f"field {name}: key 'stations' must list 1-5 letter/digit codes")
    locations = raw.get("locations", [])
    if not isinstance(locations, list) or any(
        not isinstance(loc, str) or not _LOCATION.match(loc) for loc in locations
    ):
        raise FieldConfigError(f"field {name}: key 'locations' must list 0-2 letter/digit codes")
    station_map = raw.get("station_map", {})
    if not isinstance(station_map, dict) or any(
        not isinstance(code, str) or code not in stations for code in station_map.values()
    ):
        raise FieldConfigError(
            f"field {name}: key 'station_map' must map header station codes to codes listed "
            "in 'stations'"
        )
    if source == "index" and (locations or station_map):
        raise FieldConfigError(
            f"field {name}: keys 'locations' and 'station_map' apply to station_source 'header'"
        )
    if source == "index" and station_count == 0:
        raise FieldConfigError(
            f"field {name}: key 'station_count' is required with station_source 'index'"
        )
    if source == "header" and not stations:
        raise FieldConfigError(
            f"field {name}: key 'stations' is required with station_source 'header'"
        )
    numbered = {f"{prefix}{first + i:0{width}d}" for i in range(station_count)}
    try:
        coordinates = (
            parse_coordinates(name, "coordinates", raw["coordinates"])
            if "coordinates" in raw
            else None
        )
        station_coordinates = parse_station_coordinates(
            name, raw.get("station_coordinates"), frozenset(numbered | set(stations))
        )
        instruments = parse_instruments(name, raw.get("instruments"), frozenset(sensors), rate)
    except MetadataError as exc:
        raise FieldConfigError(str(exc)) from None
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
        locations=tuple(locations),
        station_map={str(k).strip(): v for k, v in station_map.items()},
        coordinates=coordinates,
        station_coordinates=station_coordinates,
        instruments=instruments,
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
