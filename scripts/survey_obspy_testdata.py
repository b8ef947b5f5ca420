"""Survey: every file of ObsPy's shipped test data that ObsPy reads as waveforms, through
decimate, convert and the seam sweep, with a field whose SEED ids come from the headers and
one whose ids come from the trace positions. Prints the outcomes grouped by cause.

    .venv/bin/python -m scripts.survey_obspy_testdata [--target-rate HZ] [--json FILE]

The map of what real inputs still fail, and why; ``tests/test_real_world_inputs.py`` keeps a
chosen file per family under test. No Azure: a temporary directory is the share.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Every orientation code a header may end in has a sensor, so a header's own component is
#: used wherever it is one.
_SENSORS = "{ " + ", ".join(f'{c} = "short-period"' for c in "ZNE123HUVW") + " }"


def fields_toml(target_hz: float, stream: Any = None) -> str:
    """Two fields: ids from the trace headers, and ids from the trace positions.

    ``stream`` is an ``obspy.Stream`` (or None: no stations listed but the placeholder).

    The header field lists the stations and locations of ``stream`` (the input as ObsPy
    reads it), as an operator configures a field for its stations; codes that are not SEED
    codes (CSS's ``TESTbe``, KNET's ``AKT013``) are mapped with ``station_map``. Traces
    without codes fall back to numbered stations.
    """
    stations: dict[str, None] = {"STA": None}
    station_map: dict[str, str] = {}
    locations: dict[str, None] = {}
    networks: dict[str, set[str]] = defaultdict(set)
    for tr in stream or []:
        networks[tr.stats.station.strip()].add(tr.stats.network.strip())
    for tr in stream or []:
        code = tr.stats.station.strip()
        if len(networks[code]) > 1:  # one code under two networks: one station each
            station_map.setdefault(f"{tr.stats.network.strip()}.{code}", f"M{len(station_map)}")
        elif code and code.isascii() and re.fullmatch(r"[A-Z0-9]{1,5}", code.upper()):
            stations[code.upper()] = None
        elif code and code not in station_map:
            station_map[code] = f"M{len(station_map)}"
        location = tr.stats.location.strip().upper()
        if location and location != "00" and re.fullmatch(r"[A-Z0-9]{1,2}", location):
            locations[location] = None
    stations.update(dict.fromkeys(station_map.values()))
    mapped = ", ".join(f"{_toml_string(k)} = {_toml_string(v)}" for k, v in station_map.items())
    return f"""
[fields.hdr]
network = "XH"
target_rate_hz = {target_hz}
location = "00"
station_source = "header"
stations = [{", ".join(_toml_string(st) for st in stations)}]
locations = [{", ".join(_toml_string(loc) for loc in locations)}]
station_map = {{ {mapped} }}
station_prefix = ""
station_count = 99999
components = ["Z", "N", "E"]
sensors = {_SENSORS}

[fields.idx]
network = "XI"
target_rate_hz = {target_hz}
location = "00"
station_source = "index"
station_prefix = ""
station_count = 99999
components = ["Z", "N", "E"]
sensors = {_SENSORS}
"""


def _toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text)


def test_data_files() -> Iterator[Path]:
    """Every file under ObsPy's ``io/*/tests/data`` and ``core/tests/data``."""
    import obspy

    root = Path(obspy.__file__).parent
    for folder in [*sorted(root.glob("io/*/tests/data")), root / "core/tests/data"]:
        yield from (p for p in sorted(folder.rglob("*")) if p.is_file())


def run_pipeline(path: Path, field: str, registry: Any) -> dict[str, Any]:
    """decimate + convert one file on a fresh share, then the seam sweep; the outcome."""
    import numpy as np
    import obspy

    from shared_code.messages import SourceBlob
    from shared_code.seam_sweep import sweep
    from shared_code.share_layout import ensure_layout
    from shared_code.stages import PERMANENT_ERRORS, convert_file, decimate_file

    cfg = registry.get(field)
    name = re.sub(r"[^A-Za-z0-9._+=@-]", "_", path.name).lstrip("._+=@-") or "x"
    blob = f"{field}/{path.parent.name}/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        share = Path(tmp)
        ensure_layout(share)
        source = SourceBlob(url=f"file://{path}", container="raw", name=blob, etag='"1"',
                            event_id="survey", event_time="2026-01-01T00:00:00+00:00")  # fmt: skip
        stage = "decimate"
        try:
            request, report = decimate_file(path, blob, share, cfg, source)
            stage = "convert"
            converted = convert_file(request, share, cfg)
            stage = "seam sweep"  # a lone file's edges, as after the timeout
            sweep(share, registry, timeout_minutes=0, now=time.time() + 3600)
        except Exception as exc:
            kind = "refused" if isinstance(exc, PERMANENT_ERRORS) else "crashed"
            reason = str(exc).replace(blob + ": ", "")
            return {"outcome": f"{kind} ({stage})", "reason": f"{type(exc).__name__}: {reason}"}
        back = obspy.read(str(share / converted.output_path))
        return {
            "outcome": "converted",
            "via": report.output_format,
            "ids": len({tr.id for tr in back}),
            "rates": sorted({tr.stats.sampling_rate for tr in back}),
            "finite": all(bool(np.isfinite(tr.data).all()) for tr in back),
        }


def survey(target_rate_hz: float) -> list[dict[str, Any]]:
    """One row per file ObsPy reads as waveforms."""
    import obspy

    from shared_code.fields import parse_fields

    root = Path(obspy.__file__).parent
    rows = []
    for path in test_data_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                st = obspy.read(str(path))
            except Exception:
                continue  # not waveforms for ObsPy: out of scope
            row: dict[str, Any] = {
                "file": str(path.relative_to(root)),
                "formats": sorted({str(tr.stats.get("_format")) for tr in st}),
                "traces": len(st),
                "channels": len({tr.id for tr in st}),
                "rates": sorted({float(tr.stats.sampling_rate) for tr in st}),
            }
            # Configured for the file's own stations, as an operator would configure a field.
            registry = parse_fields(fields_toml(target_rate_hz, st))
            for field in ("hdr", "idx"):
                row[field] = run_pipeline(path, field, registry)
        rows.append(row)
    return rows


def _cause(result: dict[str, Any]) -> str:
    if result["outcome"] == "converted":
        return "converted" + ("" if result["finite"] else " (non-finite samples)")
    reason = re.sub(r"'[^']*'", "'…'", result["reason"])
    reason = re.sub(r"\[[^\]]*\]|\d+(\.\d+)?", "N", reason)
    return f"{result['outcome']}: {reason[:140]}"


def print_grouped(rows: list[dict[str, Any]]) -> None:
    """Per field: each cause, how many files, which families, a few examples."""
    for field in ("hdr", "idx"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            groups[_cause(row[field])].append(row)
        print(f"\n== {field}: SEED ids from {'headers' if field == 'hdr' else 'positions'}")
        for cause, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            families = Counter(f for row in members for f in row["formats"])
            print(f"{len(members):4d}  {cause}\n      {dict(families)}")
            if cause != "converted":
                examples = [row["file"].split("/tests/data/")[-1] for row in members[:4]]
                print(f"      e.g. {', '.join(examples)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-rate", type=float, default=20.0, help="Hz (default 20)")
    parser.add_argument("--json", type=Path, help="also write every row as JSON here")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    rows = survey(args.target_rate)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print_grouped(rows)
    converted = sum(row[f]["outcome"] == "converted" for row in rows for f in ("hdr", "idx"))
    print(f"\n{len(rows)} waveform files, {converted} of {2 * len(rows)} runs converted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
