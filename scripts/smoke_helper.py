"""Python side of infra/smoke.sh: what the post-deploy smoke test needs from the project's code.

The smoke test must find the ledger row and the MiniSEED the way the app writes them, so it asks
the app's own modules instead of re-implementing them in bash:

``sample --fields F --field NAME --out DIR``
    writes a small raw file the field's configuration accepts (10 s at 1000 Hz, one station);
    prints ``<path>\\t<NET>\\t<STA>`` (the station SeedLink should then serve).
``expect BLOB``
    prints the blob's field (the ledger's PartitionKey, ``share_layout.parse_blob_name``), its
    MiniSEED path on the share (``share_layout.blob_paths``) and the OData filter that finds its
    ledger rows by the ``blob`` column (``Ledger.begin`` writes the original name there), one
    per line.
``row``
    reads ``az storage entity query -o json`` on stdin; prints the row's ``state``, ``stage``,
    ``reason`` (one line each) and its ``mseed_paths``, one per line; nothing for no row.
``seedlink [--probe] HOST:PORT``
    exit 3 when nothing listens there within 5 s (no WireGuard tunnel up); else, unless
    ``--probe``, lists the server's streams (``NET STA LOC CHA`` per line) with ObsPy's
    SeedLink client (``get_info(level="channel")``: SeedLink's INFO STREAMS), for hosts
    without ``slinktool``.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from shared_code.fields import FieldConfig, load_fields
from shared_code.share_layout import blob_paths, parse_blob_name

#: Sample length (s) and rate (Hz): small (one station, ~160 kB as int32), yet longer than the
#: decimation filters' edges at any target rate the fields use.
SAMPLE_SECONDS = 10.0
SAMPLE_RATE_HZ = 1000.0
#: Start time of the sample's data: long before any field's real data, so the smoke test's
#: synthetic samples never overlap or interleave with a station's real record in SeisComP.
SMOKE_START = datetime(2000, 1, 1, tzinfo=UTC)
SMOKE_START_NS = int(SMOKE_START.timestamp()) * 1_000_000_000


def odata_string(value: str) -> str:
    """An OData string literal: single quotes doubled (Querying tables and entities,
    https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities)."""
    return "'" + value.replace("'", "''") + "'"


def write_sample(cfg: FieldConfig, out_dir: Path) -> tuple[Path, str, str]:
    """A small raw file for field ``cfg``; returns (path, network, station)."""
    from scripts.sample_data import array_record, write_segy

    out_dir.mkdir(parents=True, exist_ok=True)
    n_comp = len(cfg.components)
    if cfg.station_source == "header" and cfg.stations:
        # A header-sourced field may have no numbered stations: MiniSEED with its first
        # listed station and configured location, one trace per component.
        from obspy import Stream, Trace, UTCDateTime

        data = array_record(n_stations=math.ceil(n_comp / 4), seconds=SAMPLE_SECONDS,
                            rate_hz=SAMPLE_RATE_HZ, n_events=1)  # fmt: skip
        station = cfg.stations[0]
        stream = Stream(
            Trace(
                data[i].round().astype("int32"),
                header={
                    "network": cfg.network,
                    "station": station,
                    "location": cfg.location,
                    "channel": f"HH{comp}",
                    "sampling_rate": SAMPLE_RATE_HZ,
                    "starttime": UTCDateTime(SMOKE_START),
                },
            )
            for i, comp in enumerate(cfg.components)
        )
        path = out_dir / "smoke.mseed"
        stream.write(str(path), format="MSEED", encoding="STEIM2", reclen=512)
        return path, cfg.network, station
    # Numbered stations: SEG-Y traces 0 .. n-1 are the first station's components, or, with a
    # channel selection, enough traces to reach its first selected channel's station.
    first = cfg.channels[0] if cfg.channels else 0
    n_traces = (first // n_comp + 1) * n_comp
    data = array_record(n_stations=math.ceil(n_traces / 4), seconds=SAMPLE_SECONDS,
                        rate_hz=SAMPLE_RATE_HZ, n_events=1)[:n_traces]  # fmt: skip
    path = write_segy(out_dir / "smoke.sgy", data, SAMPLE_RATE_HZ, SMOKE_START)
    from shared_code.waveforms import TraceMeta

    seed_id = cfg.seed_id(TraceMeta(index=first), cfg.target_rate_hz)
    return path, cfg.network, seed_id.split(".")[1]


def expect(blob: str) -> list[str]:
    """Field, share path of the MiniSEED and ledger filter of a raw blob name holding the
    smoke sample (its data start :data:`SMOKE_START` picks the MiniSEED's day folder)."""
    field = parse_blob_name(blob).field
    return [
        field,
        blob_paths(blob).mseed(SMOKE_START_NS),
        f"PartitionKey eq {odata_string(field)} and blob eq {odata_string(blob)}",
    ]


def row_lines(answer: str) -> list[str]:
    """state, stage, reason and mseed paths of the first entity in an az query answer."""
    items = json.loads(answer or "{}").get("items") or []
    if not items:
        return []
    row = items[0]
    paths = row.get("mseed_paths") or "[]"
    try:
        mseed = json.loads(paths) if isinstance(paths, str) else list(paths)
    except ValueError:
        mseed = [paths]
    flat = [" ".join(str(row.get(k) or "").split()) for k in ("state", "stage", "reason")]
    return [*flat, *map(str, mseed)]


def seedlink_streams(
    address: str, *, probe: bool = False, timeout_s: float = 5.0
) -> list[str] | None:
    """Streams a SeedLink server lists (none when ``probe``), or None if nothing accepts a
    TCP connection at ``address`` within ``timeout_s`` (s)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError:
        return None
    if probe:
        return []
    from obspy.clients.seedlink.basic_client import Client

    # level="channel" is ObsPy's name for SeedLink's INFO STREAMS (basic_client.get_info accepts
    # only "station" and "channel"); it returns (net, sta, loc, cha) tuples.
    info = Client(host, int(port), timeout=20).get_info(level="channel", cache=False)
    return [" ".join(entry) for entry in info]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_sample = sub.add_parser("sample")
    p_sample.add_argument("--fields", type=Path, required=True)
    p_sample.add_argument("--field", required=True)
    p_sample.add_argument("--out", type=Path, required=True)
    p_expect = sub.add_parser("expect")
    p_expect.add_argument("blob")
    sub.add_parser("row")
    p_seedlink = sub.add_parser("seedlink")
    p_seedlink.add_argument("--probe", action="store_true")
    p_seedlink.add_argument("address")
    args = parser.parse_args(argv)

    if args.command == "sample":
        path, network, station = write_sample(load_fields(args.fields).get(args.field), args.out)
        print(f"{path}\t{network}\t{station}")
    elif args.command == "expect":
        print("\n".join(expect(args.blob)))
    elif args.command == "row":
        lines = row_lines(sys.stdin.read())
        if lines:
            print("\n".join(lines))
    else:
        streams = seedlink_streams(args.address, probe=args.probe)
        if streams is None:
            return 3
        if streams:
            print("\n".join(streams))
    return 0


if __name__ == "__main__":
    sys.exit(main())
