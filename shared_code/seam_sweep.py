"""Emit seam halves whose neighbour never came (a real gap), after SEAM_TIMEOUT_MINUTES.

A file's outputs within the filter support of its boundaries wait for the neighbouring file
(see :mod:`shared_code.seams`). When the neighbour has not arrived after the timeout, the
sweep claims the lonely half and writes it as its own small MiniSEED file, computed from the
one edge there is with the missing side filled by edge extension: the data up to the gap is
delivered no later than the timeout plus the sweep period (the ``seams`` timer runs every 5
minutes). A neighbour arriving later still emits its own half, exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from shared_code import formats
from shared_code.dsp import design
from shared_code.fields import FieldRegistry
from shared_code.seams import (
    HEAD,
    LEFT,
    RIGHT,
    SEAMS,
    TAIL,
    SeamStore,
    seam_piece,
    traces_from_columns,
)
from shared_code.share_layout import atomic_writer, seam_mseed_path
from shared_code.waveforms import NS_PER_S, Block, Recording

log = logging.getLogger(__name__)
SWEEP_OWNER = "seam-sweep"


@dataclass(frozen=True)
class SweptHalf:
    field: str
    stream: str
    key: int
    half: str
    mseed_path: str
    n_samples: int


def sweep(
    share_root: Path, registry: FieldRegistry, timeout_minutes: float, now: float | None = None
) -> list[SweptHalf]:
    """Emit every lonely seam half older than ``timeout_minutes``; returns what was written."""
    base = share_root / SEAMS
    if not base.is_dir():
        return []
    done: list[SweptHalf] = []
    for field_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        cfg = registry.fields.get(field_dir.name)
        if cfg is None:
            log.warning("seam state for unknown field %s left alone", field_dir.name)
            continue
        for stream_dir in sorted(p for p in field_dir.iterdir() if p.is_dir()):
            store = SeamStore(share_root, cfg.name, stream_dir.name)
            for key in sorted(store.keys()):
                for side, half in ((TAIL, LEFT), (HEAD, RIGHT)):
                    other = HEAD if side == TAIL else TAIL
                    if (
                        store.edge_meta(key, side) is None
                        or store.edge_meta(key, other) is not None
                        or store.claimed(key, half)
                        or store.edge_age_s(key, side, now) < timeout_minutes * 60
                        or not store.claim(key, half, SWEEP_OWNER)
                    ):
                        continue
                    swept = _emit(
                        share_root, registry, store, stream_dir.name, key=key, side=side, half=half
                    )
                    done.append(swept)
    return done


def _emit(
    share_root: Path,
    registry: FieldRegistry,
    store: SeamStore,
    stream: str,
    *,
    key: int,
    side: str,
    half: str,
) -> SweptHalf:
    meta = store.edge_meta(key, side)
    edge = store.get_edge(key, side)
    assert meta is not None and edge is not None
    cfg = registry.get(str(meta["field"]))
    plan = design(float(meta["input_rate_hz"]), float(meta["output_rate_hz"]))
    piece = seam_piece(
        plan,
        key,
        tail=edge if side == TAIL else None,
        head=edge if side == HEAD else None,
        halves=(half,),
    )
    relative = seam_mseed_path(cfg.name, stream, key, half)
    if piece.n_samples:
        traces = traces_from_columns(meta["traces"])
        rate = plan.output_rate_hz
        for trace in traces:
            sid = cfg.seed_id(trace, rate)
            trace.network, trace.station, trace.location, trace.channel = sid.split(".")
        start_ns = round(Fraction(piece.first_index) / plan.output_rate * NS_PER_S)
        recording = Recording(
            format="MSEED",
            blocks=[Block(piece.data, rate, start_ns, traces)],
            source=relative,
        )
        with atomic_writer(share_root, relative) as (_tmp, fh):
            formats.write(recording, fh, "MSEED")
        log.warning(
            "seam %s/%s/%d: neighbour missing after the timeout; %s half (%d samples) "
            "emitted with extended edges -> %s",
            cfg.name, stream, key, half, piece.n_samples, relative,
        )  # fmt: skip
    return SweptHalf(cfg.name, stream, key, half, relative, piece.n_samples)
