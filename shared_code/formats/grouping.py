"""Group traces into :class:`~shared_code.waveforms.Block` s (same start, rate and length)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from shared_code.waveforms import Block, TraceMeta


class Trace(NamedTuple):
    """One trace on its way into a block: samples, rate (Hz), first-sample time (ns)."""

    data: np.ndarray
    sampling_rate: float
    starttime_ns: int
    meta: TraceMeta


def groups_by_start(starts_ns: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Traces of equal start time (ns): (start, row indices) per group, in order of first row."""
    uniq, first, inverse = np.unique(starts_ns, return_index=True, return_inverse=True)
    if len(uniq) == 1:
        return [(int(uniq[0]), np.arange(len(starts_ns)))]
    return [
        (int(uniq[group]), np.flatnonzero(inverse == group))
        for group in np.argsort(first, kind="stable")
    ]


def group_traces(traces: Iterable[Trace]) -> list[Block]:
    """Blocks of traces with identical start, rate, length and dtype, in order of appearance."""
    groups: dict[tuple[int, float, int, str], list[Trace]] = {}
    for tr in traces:
        key = (tr.starttime_ns, tr.sampling_rate, len(tr.data), tr.data.dtype.str)
        groups.setdefault(key, []).append(tr)
    return [
        Block(
            np.stack([tr.data for tr in members]),
            members[0].sampling_rate,
            members[0].starttime_ns,
            [tr.meta for tr in members],
        )
        for members in groups.values()
    ]


def groups_by_start_and(starts_ns: np.ndarray, *keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """Traces of equal start time (ns) and equal values of each of ``keys`` (one value per
    trace, e.g. length in samples, interval in µs): (start, row indices) per group, in order
    of first row (rows ascending within a group)."""
    columns = [np.asarray(starts_ns, np.int64)]
    columns += [np.unique(k, return_inverse=True)[1].reshape(-1).astype(np.int64) for k in keys]
    _, first, inverse = np.unique(
        np.stack(columns, axis=1), axis=0, return_index=True, return_inverse=True
    )
    inverse = inverse.reshape(-1)
    # One stable sort, not one scan per group: files may hold thousands of lengths.
    rows = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    return [(int(starts_ns[first[g]]), rows[g]) for g in np.argsort(first, kind="stable")]
