"""StationXML inventory of every channel the pipeline can emit, from the field configuration.

The station and stream list is :func:`shared_code.seiscomp.stations`, the one SeisComP's seedlink
bindings are generated from (itself :meth:`shared_code.fields.FieldConfig.streams`, which holds
exactly the ids :meth:`~shared_code.fields.FieldConfig.seed_id` can give): the inventory and the
bindings always describe the same ``NET.STA.LOC.CHA`` set. Built with ObsPy's
``Inventory``/``Network``/``Station``/``Channel``/``Response`` classes and written by ObsPy's
StationXML writer (FDSN StationXML 1.2), validated against the schema ObsPy ships.

Sample rates. A channel whose band code is that of the field's target rate carries every
decimated file, so it is declared at the target rate (Hz). Files uploaded at or below the
target pass through unchanged (:mod:`shared_code.stages`), at their own rate: one of them in the
target's band shares that channel at a slower rate, and the other band codes in ``streams()``
exist only for such files. Their rate is the uploaded file's, not known in advance, so those
channels carry no ``SampleRate`` (optional in the schema: ``SampleRateGroup`` has
``minOccurs="0"`` in ChannelType) and a comment saying so.

Coordinates. StationXML requires latitude, longitude and elevation of every station and
channel. A station without configured coordinates (keys ``coordinates`` /
``station_coordinates`` in config/fields.toml) is written at latitude 0, longitude 0, elevation
0 m with a comment naming the keys to set, and :func:`unlocated` lists those stations so the
CLI warns (or, with ``--require-coordinates``, refuses). Why not refuse by default: the stream
list and sample rates are right and useful without locations (SeisComP's inventory, ObsPy
users reading the rate), and the deployment publishes the inventory on every run; a placeholder
marked in the file itself is visible to whoever imports it, where a missing file is not.

Epochs start at 1970-01-01 and stay open: the channels cover any backfill a field uploads, and
an unchanged configuration gives the same inventory apart from its ``Created`` time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from shared_code.field_metadata import Coordinates, coordinates_of
from shared_code.fields import SENSORS, FieldConfig, FieldRegistry, band_code
from shared_code.seiscomp import stations

if TYPE_CHECKING:
    from obspy.core.inventory import Channel, Inventory

#: Where nothing is configured: (0, 0, 0 m); every such station says so in a comment.
PLACEHOLDER = Coordinates(latitude=0.0, longitude=0.0, elevation=0.0, depth=0.0)
#: Start of every epoch (see the module docstring).
EPOCH_START = "1970-01-01T00:00:00Z"
#: Output units of every response: what the MiniSEED samples are.
OUTPUT_UNITS = "count"
#: Orientation code -> (azimuth, dip) in degrees, for the codes whose direction the code itself
#: fixes (SEED manual, appendix A: Z up, N north, E east; dip -90 is up). 1 2 3 H U V W are
#: not tied to a direction, so their azimuth/dip are left out.
_ORIENTATION = {"Z": (0.0, -90.0), "N": (0.0, 0.0), "E": (90.0, 0.0)}


def unlocated(registry: FieldRegistry) -> list[str]:
    """``NET.STA`` of every station without configured coordinates (placeholders in the XML)."""
    return [
        f"{st.network}.{st.code}"
        for st in stations(registry)
        if _coordinates(registry.get(st.field), st.code) is None
    ]


def build_inventory(registry: FieldRegistry) -> Inventory:
    """An ObsPy ``Inventory`` with one channel per SEED id the configured fields can emit."""
    from obspy import UTCDateTime
    from obspy.core.inventory import Comment, Inventory, Network, Site, Station

    start = UTCDateTime(EPOCH_START)
    by_network: dict[str, list[Station]] = defaultdict(list)
    fields_of: dict[str, set[str]] = defaultdict(set)
    for st in stations(registry):
        cfg = registry.get(st.field)
        where = _coordinates(cfg, st.code)
        comments = []
        if where is None:
            comments.append(
                Comment(
                    f"Coordinates not configured: latitude, longitude and elevation 0 are "
                    f"placeholders. Set key 'coordinates' or 'station_coordinates.{st.code}' of "
                    f"field {cfg.name} in config/fields.toml."
                )
            )
        where = where or PLACEHOLDER
        channels = [_channel(cfg, seed_id, where, start) for seed_id in st.streams]
        by_network[st.network].append(
            Station(
                code=st.code,
                latitude=where.latitude,
                longitude=where.longitude,
                elevation=where.elevation,
                channels=channels,
                start_date=start,
                site=Site(name=f"{cfg.name} {st.code}"),
                comments=comments,
            )
        )
        fields_of[st.network].add(cfg.name)
    networks = [
        Network(
            code=code,
            stations=by_network[code],
            start_date=start,
            description=f"CCS-passive field(s) {', '.join(sorted(fields_of[code]))}",
        )
        for code in sorted(by_network)
    ]
    return Inventory(networks=networks, source="CCS-passive config/fields.toml")


def write_inventory(inventory: Inventory, path: Path) -> None:
    """Write FDSN StationXML, validated against the schema (ObsPy raises if it is invalid)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    inventory.write(str(path), format="STATIONXML", validate=True)


def _coordinates(cfg: FieldConfig, station: str) -> Coordinates | None:
    return coordinates_of(station, cfg.coordinates, cfg.station_coordinates)


def _channel(cfg: FieldConfig, seed_id: str, where: Coordinates, start: object) -> Channel:
    from obspy.core.inventory import Channel, Comment, Equipment, Response
    from obspy.core.inventory.response import InstrumentSensitivity

    _net, _sta, location, code = seed_id.split(".")
    component = code[2]
    sensor_type = cfg.sensors[component]
    instrument = cfg.instruments.get(component)
    long_period = SENSORS[sensor_type][1]
    target = cfg.target_rate_hz
    decimated = code[0] == band_code(target, long_period)
    if not decimated:
        comment = (
            f"Only files uploaded below the target rate {target:g} Hz, passed through unchanged, "
            "have this band code: the sample rate is the uploaded file's."
        )
    elif band_code(math.nextafter(target, 0.0), long_period) == code[0]:
        comment = (
            f"Decimated files: {target:g} Hz. A file uploaded below {target:g} Hz with this band "
            "code passes through unchanged, at its own rate."
        )
    else:
        comment = f"Decimated files and files uploaded at the target rate: {target:g} Hz."
    response = None
    if instrument is not None and instrument.sensitivity is not None:
        response = Response(
            instrument_sensitivity=InstrumentSensitivity(
                value=instrument.sensitivity,
                frequency=instrument.sensitivity_frequency_hz,
                input_units=instrument.input_units,
                output_units=OUTPUT_UNITS,
            )
        )
    description = instrument.description if instrument and instrument.description else None
    azimuth, dip = _ORIENTATION.get(component, (None, None))
    return Channel(
        code=code,
        location_code=location,
        latitude=where.latitude,
        longitude=where.longitude,
        elevation=where.elevation,
        depth=where.depth,
        azimuth=azimuth,
        dip=dip,
        sample_rate=cfg.target_rate_hz if decimated else None,
        start_date=start,
        sensor=Equipment(type=sensor_type, description=description),
        response=response,
        comments=[Comment(comment)],
    )
