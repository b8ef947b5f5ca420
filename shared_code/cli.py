"""Command-line entry point for operators and tests.

``process --field FIELD [--target-rate HZ] --output DIR FILE...``
    decimate and convert local files through the same code as the functions, with DIR as the
    share root (DIR/decimated, DIR/mseed, DIR/failed); no Azure, no Azurite.
``replay --field F [--since T] [--until T] [--failed]``
    re-drive raw blobs through the pipeline (ledger rows created in the window; with
    --failed only failed ones); ``replay --record failed/<day>/<file>.json`` replays one
    failure record (its event, or its queue message).
``status``
    the ledger summary per field and state.
``sweep-seams --output DIR [--timeout-minutes M] [--now]``
    emit seam halves whose neighbouring file has not come within the timeout (what the
    ``seams`` timer does); ``--now`` treats every lonely half as timed out (end of a backfill).

``inventory --output FILE [--field F] [--require-coordinates]``
    write the FDSN StationXML inventory of every channel the pipeline can emit (all fields, or
    one), from the field configuration; warns about stations without coordinates.

``replay`` and ``status`` use the pipeline's settings, from the environment or from a
``local.settings.json``-style file given with ``--settings`` (Azurite or Azure alike).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from shared_code.settings import APP_ROOT


def _etag(path: Path) -> str:
    """A local file's version, as a blob's ETag is: size and modification time. Cheap on a
    multi-GB file, and a rewritten file gets a new one."""
    st = path.stat()
    return f"{st.st_size:x}-{st.st_mtime_ns:x}"


def cmd_process(args: argparse.Namespace) -> int:
    from shared_code.failures import record_failure
    from shared_code.fields import FieldConfigError, UnknownFieldError, load_fields
    from shared_code.messages import SourceBlob
    from shared_code.share_layout import ensure_layout
    from shared_code.stages import PERMANENT_ERRORS, convert_file, decimate_file

    try:
        cfg = load_fields(Path(args.fields).resolve()).get(args.field)
    except (FieldConfigError, UnknownFieldError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    share = Path(args.output)
    ensure_layout(share)
    failures = 0
    for n, name in enumerate(args.files, 1):
        path = Path(name)
        blob = f"{cfg.name}/{path.name}"
        prefix = f"[{n}/{len(args.files)}] {path}"
        etag = ""
        try:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
            etag = _etag(path)
            source = SourceBlob(
                url=path.resolve().as_uri(),
                container="local",
                name=blob,
                etag=etag,
                event_id=f"cli-{etag[:12]}",
                event_time=datetime.now(UTC).isoformat(),
            )
            request, dec = decimate_file(
                path, blob, share, cfg, source, target_rate_hz=args.target_rate
            )
            conv = convert_file(request, share, cfg)
        except Exception as exc:
            failures += 1
            reason = (
                str(exc)
                if isinstance(exc, (*PERMANENT_ERRORS, OSError))
                else f"{type(exc).__name__}: {exc}"
            )
            record_failure(
                share, stage="process", reason=reason, blob=blob, etag=etag, field=cfg.name
            )
            print(f"{prefix}: FAILED: {reason}", file=sys.stderr, flush=True)
            continue
        note = " (passed through: already at or below target)" if dec.passthrough else ""
        packed = f" ({dec.compression}-compressed)" if dec.compression else ""
        print(
            f"{prefix}: {dec.input_format}{packed} {dec.traces} traces, {dec.input_rate_hz:g} -> "
            f"{dec.output_rate_hz:g} Hz{note}, {dec.samples_in} -> {dec.samples_out} samples, "
            f"{dec.duration_s:.1f} s of data, {dec.seconds + conv.seconds:.2f} s; "
            f"{dec.output_path}, {conv.output_path} ({len(conv.seed_ids)} SEED ids)",
            flush=True,
        )
    return 1 if failures else 0


def _load_settings_file(path: str | None) -> None:
    if path:
        values = json.loads(Path(path).read_text()).get("Values", {})
        for key, value in values.items():
            os.environ.setdefault(key, str(value))


def cmd_replay(args: argparse.Namespace) -> int:
    from shared_code.ledger import Ledger
    from shared_code.pipeline import redrive_blob, replay_failure_record
    from shared_code.settings import get_settings
    from shared_code.times import parse_since

    _load_settings_file(args.settings)
    settings = get_settings()
    if args.record:
        outcome = replay_failure_record(settings, args.record)
        print(f"{args.record}: {outcome}")
        return 0
    if not args.field:
        print("error: replay needs --field (or --record)", file=sys.stderr)
        return 2
    state = "failed" if args.failed else None
    since, until = parse_since(args.since), parse_since(args.until)
    rows = Ledger.from_settings(settings).query(args.field, state, since, until, by="created")
    blobs = sorted({str(row["blob"]) for row in rows})
    failures = 0
    for blob in _progress(blobs, "replay"):
        try:
            report = redrive_blob(settings, blob)
        except Exception as exc:
            failures += 1
            print(f"{blob}: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if report is None:
            failures += 1
            print(f"{blob}: not decimated (see failed/ and the ledger)", file=sys.stderr)
    print(f"replayed {len(blobs) - failures} of {len(blobs)} blob(s) of field {args.field}")
    return 1 if failures else 0


def _progress(items: list[str], label: str) -> Iterable[str]:
    from tqdm import tqdm

    return tqdm(items, desc=label, unit="file", file=sys.stderr, disable=not items)


def cmd_status(args: argparse.Namespace) -> int:
    from shared_code.ledger import Ledger
    from shared_code.settings import get_settings

    _load_settings_file(args.settings)
    summary = Ledger.from_settings(get_settings()).summary()
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    states = sorted({state for per_field in summary.values() for state in per_field})
    print("field".ljust(16) + "".join(state.rjust(12) for state in states))
    for field, counts in sorted(summary.items()):
        print(field.ljust(16) + "".join(str(counts.get(state, 0)).rjust(12) for state in states))
    return 0


def cmd_sweep_seams(args: argparse.Namespace) -> int:
    import time

    from shared_code.fields import load_fields
    from shared_code.seam_sweep import sweep

    registry = load_fields(Path(args.fields).resolve())
    now = time.time() + args.timeout_minutes * 60 if args.now else None
    swept = sweep(Path(args.output), registry, args.timeout_minutes, now=now)
    for half in swept:
        print(f"{half.field} {half.key} {half.half}: {half.n_samples} samples -> {half.mseed_path}")
    print(f"{len(swept)} lonely seam half(s) emitted")
    return 0


def cmd_inventory(args: argparse.Namespace) -> int:
    from shared_code.fields import FieldConfigError, FieldRegistry, UnknownFieldError, load_fields
    from shared_code.stationxml import build_inventory, unlocated, write_inventory

    try:
        registry = load_fields(Path(args.fields).resolve())
        if args.field:
            registry = FieldRegistry({args.field: registry.get(args.field)})
        inventory = build_inventory(registry)
    except (FieldConfigError, UnknownFieldError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    missing = unlocated(registry)
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        level = "error" if args.require_coordinates else "warning"
        print(
            f"{level}: {len(missing)} station(s) have no coordinates ({shown}): written at "
            "latitude/longitude/elevation 0; set keys 'coordinates' / 'station_coordinates' in "
            f"{args.fields}",
            file=sys.stderr,
        )
        if args.require_coordinates:
            return 2
    write_inventory(inventory, Path(args.output))
    channels = sum(len(st.channels) for net in inventory for st in net)
    stations = sum(len(net.stations) for net in inventory)
    print(f"{channels} channels of {stations} stations written to {args.output} (StationXML)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shared_code.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    process = sub.add_parser("process", help="decimate and convert local files")
    process.add_argument("--field", required=True, help="field name from the field configuration")
    process.add_argument("--target-rate", type=float, default=None, metavar="HZ",
                         help="output sample rate in Hz (default: the field's)")  # fmt: skip
    process.add_argument("--output", required=True, metavar="DIR", help="share root to write to")
    fields_default = os.environ.get("FIELDS_CONFIG") or str(APP_ROOT / "config" / "fields.toml")
    process.add_argument(
        "--fields",
        default=fields_default,
        help="field configuration file (default: $FIELDS_CONFIG or config/fields.toml)",
    )
    process.add_argument("files", nargs="+", metavar="FILE")
    process.set_defaults(func=cmd_process)

    settings_help = "a local.settings.json-style file whose Values fill unset settings"
    replay = sub.add_parser("replay", help="re-drive raw blobs through the pipeline")
    replay.add_argument("--field", help="field to replay")
    replay.add_argument("--since", help="ledger rows created at or after (ISO 8601 or 6h, 2d)")
    replay.add_argument("--until", help="ledger rows created before (ISO 8601 or 6h, 2d)")
    replay.add_argument("--failed", action="store_true", help="only files whose state is failed")
    replay.add_argument("--record", metavar="PATH", help="replay one failure record (share path)")
    replay.add_argument("--settings", help=settings_help)
    replay.set_defaults(func=cmd_replay)

    status = sub.add_parser("status", help="ledger summary per field and state")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--settings", help=settings_help)
    status.set_defaults(func=cmd_status)

    seams = sub.add_parser("sweep-seams", help="emit seam halves whose neighbour never came")
    seams.add_argument("--output", required=True, metavar="DIR", help="share root")
    seams.add_argument("--timeout-minutes", type=float, default=30.0, metavar="M")
    seams.add_argument("--now", action="store_true", help="treat every lonely half as timed out")
    seams.add_argument("--fields", default=fields_default, help="field configuration file")
    seams.set_defaults(func=cmd_sweep_seams)

    inventory = sub.add_parser("inventory", help="write the StationXML of every emitted channel")
    inventory.add_argument("--output", required=True, metavar="FILE", help="StationXML to write")
    inventory.add_argument("--field", help="only this field (default: every configured field)")
    inventory.add_argument("--fields", default=fields_default, help="field configuration file")
    inventory.add_argument("--require-coordinates", action="store_true",
                           help="refuse (exit 2) when a station has no coordinates")  # fmt: skip
    inventory.set_defaults(func=cmd_inventory)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
