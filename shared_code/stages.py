"""The two stages on local files and the share, without storage or the Functions host.

``decimate_file`` reads a raw file (decompressing an upload first), decimates it in bounded
memory with seamless joins to its neighbours and writes the decimated file to the share;
``convert_file`` turns a decimated file into MiniSEED under ``mseed/``. Both are what the
triggers' handlers (:mod:`shared_code.pipeline`) and the CLI call. Before any work, every
trace the field keeps must have a SEED id that SeisComP's bindings serve, and no two input
channels may share one (:func:`check_seed_ids`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np

from shared_code import formats
from shared_code.decimation_job import CHUNK_BYTES, plan_file, run_jobs
from shared_code.events import EventError
from shared_code.fields import (
    FieldConfig,
    FieldConfigError,
    SeedIdError,
    UnknownFieldError,
)
from shared_code.formats import compression
from shared_code.messages import (
    ConvertRequest,
    MessageError,
    SourceBlob,
    format_ranges,
    parse_ranges,
)
from shared_code.share_layout import (
    STAGING,
    BlobNameError,
    atomic_writer,
    blob_paths,
    resolve,
)
from shared_code.waveforms import TraceMeta

log = logging.getLogger(__name__)

#: Errors that describe the input, not the platform: recorded, never retried.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    formats.FormatError,
    BlobNameError,
    UnknownFieldError,
    FieldConfigError,
    EventError,
    MessageError,
)


class InputError(ValueError):
    """Bad input that is not a format problem (empty blob, wrong container, ...)."""


PERMANENT_ERRORS = (*PERMANENT_ERRORS, InputError)


@dataclass
class StageReport:
    """What one stage did to one file: for the summary, the logs and the metrics."""

    blob: str
    field: str
    stage: str
    input_format: str = ""
    output_format: str = ""
    traces: int = 0
    input_rate_hz: float = 0.0
    output_rate_hz: float = 0.0
    samples_in: int = 0
    samples_out: int = 0
    duration_s: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    output_path: str = ""
    passthrough: bool = False
    #: How the input was compressed for transfer (``gzip``, ``bzip2``, ``xz``, ``zip``), or "".
    compression: str = ""
    seed_ids: list[str] = dataclass_field(default_factory=list)
    #: NaN/Inf samples left out of the MiniSEED, and the stretches (gaps) they made there.
    nonfinite_samples: int = 0
    gaps: int = 0


def decimate_file(
    local_path: Path,
    blob_name: str,
    share_root: Path,
    cfg: FieldConfig,
    source: SourceBlob,
    *,
    target_rate_hz: float | None = None,
    operation_id: str = "",
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[ConvertRequest, StageReport]:
    """Decimate a raw file in bounded memory and write the decimated file to the share.

    ``blob_name`` (``<field>/...``) names the file in errors and derives the share paths;
    ``target_rate_hz`` (Hz) overrides the field's rate; ``chunk_bytes`` bounds the working
    memory. The outputs near the file's boundaries join seamlessly with its neighbours (see
    :mod:`shared_code.seams`). Returns the ConvertRequest for the convert stage and a report.
    """
    started = time.perf_counter()
    paths = blob_paths(blob_name)
    size = local_path.stat().st_size
    if size == 0:
        raise InputError(f"{blob_name}: empty file (0 bytes)")
    target = cfg.target_rate_hz if target_rate_hz is None else target_rate_hz
    # The version that owns this file's seam claims; SourceBlob keeps its ETag canonical, so
    # an Event Grid delivery and a redrive of the same version are one owner.
    owner = f"{blob_name}@{source.etag}"
    # A compressed upload is decompressed beside the raw spool, on the share's staging area.
    with (
        compression.decompressed(local_path, blob_name, share_root / STAGING) as (readable, how),
        formats.open_source(readable, name=blob_name) as src,
    ):
        input_format = src.format
        # The MiniSEED file's day folder: from the raw headers, so neither the seams nor the
        # way the blob arrived (event, reconcile, CLI) can move it (share_layout.BlobPaths).
        data_start_ns = min(b.starttime_ns for b in src.blocks)
        # Before any work or state on the share (seam edges): a trace SeisComP would not
        # serve is refused here, not after the file was decimated.
        check_seed_ids(blob_name, src.blocks, cfg, target)
        jobs = [j for j in plan_file(src, cfg, target, share_root, owner) if j.n_samples > 0]
        if not jobs:
            raise InputError(f"{blob_name}: the field's channel selection keeps no trace")
        layout = formats.Layout(
            format_source=src.format,
            source=blob_name,
            file_headers=src.file_headers,
            blocks=[job.layout() for job in jobs],
        )
        out_format = formats.output_format_for(layout)
        relative = paths.decimated(formats.EXTENSIONS[out_format])
        with (
            atomic_writer(share_root, relative) as (_tmp, fh),
            formats.open_writer(out_format, fh, layout, intermediate=True) as writer,
        ):
            run_jobs(jobs, writer, chunk_bytes)
        duration = max(b.n_samples / b.sampling_rate for b in src.blocks)
    first = jobs[0]
    passthrough = all(job.passthrough for job in jobs)
    report = StageReport(
        blob=blob_name,
        field=cfg.name,
        stage="decimate",
        input_format=input_format,
        output_format=out_format,
        traces=sum(len(job.rows) for job in jobs),
        input_rate_hz=first.source.sampling_rate,
        output_rate_hz=first.sampling_rate,
        samples_in=sum(len(job.rows) * job.source.n_samples for job in jobs),
        samples_out=sum(len(job.rows) * job.n_samples for job in jobs),
        duration_s=duration,
        bytes_in=size,
        bytes_out=resolve(share_root, relative).stat().st_size,
        seconds=time.perf_counter() - started,
        output_path=relative,
        passthrough=passthrough,
        compression=how or "",
    )
    if passthrough:
        log.info(
            "%s: input rate %s Hz is at or below the target %s Hz: passed through unchanged",
            blob_name, first.source.sampling_rate, target,
        )  # fmt: skip
    indices = [t.index for job in jobs for t in job.traces]
    request = ConvertRequest(
        field=cfg.name,
        decimated_path=relative,
        file_type=out_format,
        sampling_rate_hz=first.sampling_rate,
        integer_counts=all(job.dtype.kind in "iu" for job in jobs),
        source=source,
        operation_id=operation_id,
        trace_indices="" if indices == list(range(len(indices))) else format_ranges(indices),
        data_start_ns=data_start_ns,
    )
    return request, report


def check_seed_ids(blob_name: str, blocks: list[Any], cfg: FieldConfig, target_hz: float) -> None:
    """Raise :class:`SeedIdError` naming the blob if a trace the field's channel selection
    keeps has no SEED id in the field's configuration (and so in SeisComP's bindings).

    Whether a trace has an id does not depend on the rate (Hz): only its band code does.
    """
    channels: dict[str, dict[int, TraceMeta]] = {}
    for block in blocks:
        keep = set(cfg.select(max(t.index for t in block.traces) + 1))
        rate = min(block.sampling_rate, target_hz)  # at or below the target: passed through
        for trace in block.traces:
            if trace.index in keep:
                sid = _seed_id(blob_name, cfg, trace, rate)
                channels.setdefault(sid, {}).setdefault(trace.index, trace)
    _refuse_collisions(blob_name, channels)


def _refuse_collisions(blob_name: str, channels: dict[str, dict[int, TraceMeta]]) -> None:
    """Two input channels (channel numbers) that would share one SEED id: refused, never
    mixed into one stream (segments of one channel share their number and their id)."""
    for sid, by_number in channels.items():
        if len(by_number) > 1:
            first, second = list(by_number.values())[:2]
            raise InputError(
                f"{blob_name}: input channels {_input_id(first)} and {_input_id(second)} would "
                f"both become SEED id {sid}; map them apart in the field configuration "
                "(key 'station_map', 'components' or 'channels')"
            )


def _input_id(trace: TraceMeta) -> str:
    codes = (trace.network, trace.station, trace.location, trace.channel)
    return ".".join(codes) if any(codes) else f"#{trace.index}"


def _seed_id(blob_name: str, cfg: FieldConfig, trace: TraceMeta, rate_hz: float) -> str:
    try:
        return cfg.seed_id(trace, rate_hz)
    except SeedIdError as exc:
        raise SeedIdError(f"{blob_name}: {exc}") from None


def _seed_traces(
    request: ConvertRequest, blocks: list[Any], cfg: FieldConfig
) -> tuple[list[list[TraceMeta]], list[str]]:
    """Per block, copies of the traces carrying their SEED codes; and all SEED ids."""
    indices = parse_ranges(request.trace_indices) if request.trace_indices else None
    total = sum(len(b.traces) for b in blocks)
    if indices is not None and len(indices) != total:
        raise InputError(
            f"{request.source.name}: decimated file has {total} traces, the message "
            f"names {len(indices)}"
        )
    seeded: list[list[TraceMeta]] = []
    seed_ids: list[str] = []
    channels: dict[str, dict[int, TraceMeta]] = {}
    position = 0
    for block in blocks:
        out = []
        for trace in block.traces:
            index = indices[position] if indices is not None else trace.index
            position += 1
            renumbered = trace if index == trace.index else replace(trace, index=index)
            sid = _seed_id(request.source.name, cfg, renumbered, block.sampling_rate)
            channels.setdefault(sid, {}).setdefault(index, renumbered)
            net, sta, loc, cha = sid.split(".")
            out.append(TraceMeta(index=index, network=net, station=sta, location=loc, channel=cha))
            seed_ids.append(sid)
        seeded.append(out)
    _refuse_collisions(request.source.name, channels)
    per_start: dict[int, list[str]] = {}
    for block, traces in zip(blocks, seeded, strict=True):
        per_start.setdefault(block.starttime_ns, []).extend(
            f"{t.network}.{t.station}.{t.location}.{t.channel}" for t in traces
        )
    for ids in per_start.values():
        if len(set(ids)) != len(ids):
            dupes = sorted({s for s in ids if ids.count(s) > 1})[:5]
            raise InputError(f"{request.source.name}: traces map to the same SEED id: {dupes}")
    return seeded, seed_ids


def convert_file(
    request: ConvertRequest, share_root: Path, cfg: FieldConfig, chunk_bytes: int = CHUNK_BYTES
) -> StageReport:
    """Turn a decimated file into MiniSEED (512-byte records) under ``mseed/``, atomically,
    streaming in chunks of traces.

    Every trace gets its SEED id from the field configuration; integer counts are written
    Steim-2, floats as 32-bit float records. NaN/Inf samples are left out (gaps; see
    :mod:`shared_code.formats.mseed`), counted in the report's ``nonfinite_samples`` and ``gaps``.
    """
    started = time.perf_counter()
    paths = blob_paths(request.source.name)
    decimated_path = resolve(share_root, request.decimated_path)
    if not decimated_path.is_file():
        raise FileNotFoundError(
            f"{request.source.name}: decimated file {request.decimated_path} not found"
        )
    with formats.open_source(decimated_path, name=request.decimated_path) as src:
        seeded, seed_ids = _seed_traces(request, src.blocks, cfg)
        start_ns = request.data_start_ns
        if start_ns is None:  # a message queued before data_start_ns existed
            start_ns = min(b.starttime_ns for b in src.blocks)
        try:
            mseed_path = paths.mseed(start_ns)
        except ValueError as exc:
            raise InputError(f"{request.source.name}: {exc}") from None
        layout = formats.Layout(
            format_source=src.format,
            source=request.decimated_path,
            file_headers={},
            blocks=[
                formats.BlockLayout(
                    traces=traces,
                    sampling_rate=b.sampling_rate,
                    starttime_ns=b.starttime_ns,
                    n_samples=b.n_samples,
                    dtype=np.dtype(np.int32 if b.is_integer else np.float32),
                )
                for b, traces in zip(src.blocks, seeded, strict=True)
            ],
        )
        with (
            atomic_writer(share_root, mseed_path) as (_tmp, fh),
            formats.open_writer("MSEED", fh, layout) as writer,
        ):
            for index, block in enumerate(src.blocks):
                step = max(1, chunk_bytes // max(1, block.n_samples * 8))
                for c0 in range(0, len(block.traces), step):
                    c1 = min(len(block.traces), c0 + step)
                    # As stored (the writer converts a few rows at a time as it packs).
                    data = block.stored_rows(c0, c1)
                    if data.dtype.itemsize != 4:
                        data = data.astype(np.int32 if block.is_integer else np.float32)
                    writer.write_rows(index, c0, data)
        nonfinite = (
            (writer.nonfinite_samples, writer.gaps)
            if isinstance(writer, formats.mseed.MseedWriter)
            else (0, 0)
        )
        n_traces = sum(len(b.traces) for b in src.blocks)
        n_samples = sum(len(b.traces) * b.n_samples for b in src.blocks)
        first_rate = src.blocks[0].sampling_rate
        duration = max(b.n_samples / b.sampling_rate for b in src.blocks)
        file_format = src.format
    return StageReport(
        blob=request.source.name,
        field=cfg.name,
        stage="convert",
        input_format=file_format,
        output_format="MSEED",
        traces=n_traces,
        input_rate_hz=first_rate,
        output_rate_hz=first_rate,
        samples_in=n_samples,
        samples_out=n_samples - nonfinite[0],
        duration_s=duration,
        bytes_in=decimated_path.stat().st_size,
        bytes_out=resolve(share_root, mseed_path).stat().st_size,
        seconds=time.perf_counter() - started,
        output_path=mseed_path,
        seed_ids=sorted(set(seed_ids)),
        nonfinite_samples=nonfinite[0],
        gaps=nonfinite[1],
    )
