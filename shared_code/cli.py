"""Command-line entry point for operators and tests.

``python -m shared_code.cli process --field FIELD [--target-rate HZ] --output DIR FILE...``
runs decimate and convert on local files through the same code as the functions, with DIR as
the share root (DIR/decimated, DIR/mseed, DIR/failed); no Azure, no Azurite.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from shared_code.settings import APP_ROOT


def _etag(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()[:32]}"'


def cmd_process(args: argparse.Namespace) -> int:
    from shared_code.failures import record_failure
    from shared_code.fields import FieldConfigError, UnknownFieldError, load_fields
    from shared_code.messages import SourceBlob
    from shared_code.pipeline import PERMANENT_ERRORS, convert_file, decimate_file
    from shared_code.share_layout import ensure_layout

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
                url=path.resolve().as_uri(), container="local", name=blob, etag=etag,
                event_id=f"cli-{etag.strip(chr(34))[:12]}", event_time=datetime.now(UTC).isoformat(),
            )  # fmt: skip
            request, dec = decimate_file(
                path, blob, share, cfg, source, target_rate_hz=args.target_rate
            )
            conv = convert_file(request, share, cfg)
        except Exception as exc:
            failures += 1
            reason = str(exc) if isinstance(exc, (*PERMANENT_ERRORS, OSError)) else f"{type(exc).__name__}: {exc}"
            record_failure(share, stage="process", reason=reason, blob=blob, etag=etag, field=cfg.name)
            print(f"{prefix}: FAILED: {reason}", file=sys.stderr, flush=True)
            continue
        note = " (passed through: already at or below target)" if dec.passthrough else ""
        print(
            f"{prefix}: {dec.input_format} {dec.traces} traces, {dec.input_rate_hz:g} -> "
            f"{dec.output_rate_hz:g} Hz{note}, {dec.samples_in} -> {dec.samples_out} samples, "
            f"{dec.duration_s:.1f} s of data, {dec.seconds + conv.seconds:.2f} s; "
            f"{dec.output_path}, {conv.output_path} ({len(conv.seed_ids)} SEED ids)",
            flush=True,
        )
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared_code.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    process = sub.add_parser("process", help="decimate and convert local files")
    process.add_argument("--field", required=True, help="field name from the field configuration")
    process.add_argument("--target-rate", type=float, default=None, metavar="HZ",
                         help="output sample rate in Hz (default: the field's)")  # fmt: skip
    process.add_argument("--output", required=True, metavar="DIR", help="share root to write to")
    process.add_argument(
        "--fields",
        default=os.environ.get("FIELDS_CONFIG") or str(APP_ROOT / "config" / "fields.toml"),
        help="field configuration file (default: $FIELDS_CONFIG or config/fields.toml)",
    )
    process.add_argument("files", nargs="+", metavar="FILE")
    process.set_defaults(func=cmd_process)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
