"""Optional station metadata of a field: coordinates, instrument descriptions, sensitivities.

Parsed from ``config/fields.toml`` alongside the SEED-id keys (see :mod:`shared_code.fields`) and
used only to describe the channels in StationXML (:mod:`shared_code.stationxml`); the pipeline's
naming and decimation never read it. Every error names the field and the key.

Keys (all optional, per field):

* ``coordinates = { latitude, longitude, elevation, depth }``: every station of the field;
* ``station_coordinates.<STA> = { ... }``: one station (overrides ``coordinates``);
* ``instruments.<component> = { description, sensitivity, sensitivity_frequency_hz,
  input_units }``: per orientation code.

Units follow FDSN StationXML: latitude/longitude in degrees (WGS84), elevation in m above sea
level (negative on the seabed), depth in m below the local surface (seabed, ground); a
sensitivity in counts per input unit (``m/s``, ``m/s**2``, ``m`` or ``Pa``) at a frequency in Hz.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Input units a sensitivity may be given in: the unit strings FDSN StationXML 1.2 recommends
#: (SI, ``**`` for powers; "Units" in docs.fdsn.org/projects/stationxml/en/latest/reference.html).
INPUT_UNITS = frozenset({"m", "m/s", "m/s**2", "Pa"})


class MetadataError(ValueError):
    """A metadata key of the field configuration is invalid; names the field and the key."""


@dataclass(frozen=True)
class Coordinates:
    """Where a station's sensors are: degrees (WGS84), m above sea level, m below the surface."""

    latitude: float
    longitude: float
    elevation: float
    depth: float = 0.0


@dataclass(frozen=True)
class Instrument:
    """One component's sensor: what it is and, where known, its overall sensitivity.

    ``sensitivity`` is counts per ``input_units`` at ``sensitivity_frequency_hz`` (Hz), as the
    MiniSEED carries them: the decimation's anti-alias FIR has unit gain in its passband, so the
    recorder's sensitivity holds for the decimated channel too.
    """

    description: str = ""
    sensitivity: float | None = None
    sensitivity_frequency_hz: float | None = None
    input_units: str | None = None


def _number(field: str, key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetadataError(f"field {field}: key '{key}' must be a number ({value!r})")
    if not low <= value <= high:
        raise MetadataError(f"field {field}: key '{key}' {value} is outside {low}..{high}")
    return float(value)


def parse_coordinates(field: str, key: str, raw: Any) -> Coordinates:
    """A ``{latitude, longitude, elevation[, depth]}`` table; ``key`` is how errors name it."""
    if not isinstance(raw, dict):
        raise MetadataError(f"field {field}: key '{key}' must be a table")
    unknown = set(raw) - {"latitude", "longitude", "elevation", "depth"}
    if unknown:
        raise MetadataError(f"field {field}: key '{key}' has unknown keys {sorted(unknown)}")
    for name in ("latitude", "longitude", "elevation"):
        if name not in raw:
            raise MetadataError(f"field {field}: key '{key}.{name}' is missing")
    # Elevation and depth bounds: the deepest ocean (~11 km) and the highest mountain (~9 km),
    # so that a value typed in km or feet by mistake is caught.
    return Coordinates(
        latitude=_number(field, f"{key}.latitude", raw["latitude"], -90.0, 90.0),
        longitude=_number(field, f"{key}.longitude", raw["longitude"], -180.0, 180.0),
        elevation=_number(field, f"{key}.elevation", raw["elevation"], -11_000.0, 9_000.0),
        depth=_number(field, f"{key}.depth", raw.get("depth", 0.0), -9_000.0, 12_000.0),
    )


def parse_station_coordinates(
    field: str, raw: Any, known_stations: frozenset[str]
) -> dict[str, Coordinates]:
    """``station_coordinates``: station code -> coordinates; codes must be ones the field emits."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MetadataError(f"field {field}: key 'station_coordinates' must be a table")
    out = {}
    for code, table in raw.items():
        if code not in known_stations:
            raise MetadataError(
                f"field {field}: key 'station_coordinates.{code}': no such station in this field "
                "(numbered stations and 'stations' only)"
            )
        out[code] = parse_coordinates(field, f"station_coordinates.{code}", table)
    return out


def parse_instruments(
    field: str, raw: Any, components: frozenset[str], target_rate_hz: float
) -> dict[str, Instrument]:
    """``instruments``: component -> :class:`Instrument`, for components that have a sensor."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise MetadataError(f"field {field}: key 'instruments' must be a table")
    out = {}
    for comp, table in raw.items():
        key = f"instruments.{comp}"
        if comp not in components:
            raise MetadataError(
                f"field {field}: key '{key}': component {comp!r} has no entry in 'sensors'"
            )
        if not isinstance(table, dict):
            raise MetadataError(f"field {field}: key '{key}' must be a table")
        allowed = {"description", "sensitivity", "sensitivity_frequency_hz", "input_units"}
        unknown = set(table) - allowed
        if unknown:
            raise MetadataError(f"field {field}: key '{key}' has unknown keys {sorted(unknown)}")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise MetadataError(f"field {field}: key '{key}.description' must be a string")
        if "sensitivity" not in table:
            if {"sensitivity_frequency_hz", "input_units"} & set(table):
                raise MetadataError(
                    f"field {field}: key '{key}.sensitivity' is missing (its frequency and "
                    "input units are given)"
                )
            out[comp] = Instrument(description=description)
            continue
        value = _number(field, f"{key}.sensitivity", table["sensitivity"], 0.0, math.inf)
        if value == 0.0:
            raise MetadataError(f"field {field}: key '{key}.sensitivity' must be above 0")
        for name in ("sensitivity_frequency_hz", "input_units"):
            if name not in table:
                raise MetadataError(
                    f"field {field}: key '{key}.{name}' is missing (required with a sensitivity)"
                )
        # The decimated channel carries nothing at or above its Nyquist frequency.
        nyquist = target_rate_hz / 2
        frequency = _number(
            field,
            f"{key}.sensitivity_frequency_hz",
            table["sensitivity_frequency_hz"],
            0.0,
            nyquist,
        )
        if frequency in (0.0, nyquist):
            raise MetadataError(
                f"field {field}: key '{key}.sensitivity_frequency_hz' must lie strictly between "
                f"0 and the target Nyquist frequency {nyquist:g} Hz"
            )
        units = table["input_units"]
        if units not in INPUT_UNITS:
            raise MetadataError(
                f"field {field}: key '{key}.input_units' {units!r} is not one of "
                f"{sorted(INPUT_UNITS)}"
            )
        out[comp] = Instrument(description, value, frequency, units)
    return out


def coordinates_of(
    station: str,
    default: Coordinates | None,
    per_station: Mapping[str, Coordinates],
) -> Coordinates | None:
    """A station's coordinates: its own entry, else the field's, else None (not configured)."""
    return per_station.get(station, default)
