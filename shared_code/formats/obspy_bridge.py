"""ObsPy Stream <-> Recording, for the formats read and written through ObsPy.

ObsPy is imported inside the functions (cold start). Start times are rounded to the µs, the
finest any of these formats carries; samples are converted to native byte order.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared_code.formats.errors import FormatError
from shared_code.formats.grouping import Trace, group_traces
from shared_code.waveforms import Recording, TraceMeta, exact_rate

if TYPE_CHECKING:
    from obspy import Stream

_PLAIN = (str, int, float, bool)


def read_stream(path: Path, name: str, fmt: str, **kwargs: Any) -> Stream:
    """``obspy.read`` of one format, with library errors turned into :class:`FormatError`."""
    import obspy

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return obspy.read(str(path), format=fmt, **kwargs)
    except Exception as exc:
        raise FormatError(name, f"unreadable {fmt} file: {type(exc).__name__}: {exc}") from exc


def plain(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A format's ObsPy header dict as plain values (str, int, float, bool, lists of them)."""
    out: dict[str, Any] = {}
    for key, raw in (headers or {}).items():
        value = raw.item() if isinstance(raw, np.generic) else raw
        if isinstance(value, _PLAIN) or (
            isinstance(value, list) and all(isinstance(v, _PLAIN) for v in value)
        ):
            out[str(key)] = value
    return out


def round_us(ns: int) -> int:
    """A time in ns rounded to the nearest µs."""
    return (ns + 500) // 1000 * 1000


def stream_to_recording(
    stream: Stream, fmt: str, name: str, header_key: str | None, file_headers: dict | None = None
) -> Recording:
    """Group a Stream's traces into blocks; SEED codes and ``stats[header_key]`` per trace.

    ObsPy returns one Trace per contiguous segment, so a channel with gaps is several Traces.
    ``TraceMeta.index`` is therefore the channel's order of first appearance, by its
    NET.STA.LOC.CHA: the segments of one channel share it (and so get one SEED id from a field
    whose stations come from trace positions). A trace without any SEED code is a channel of
    its own.
    """
    channels: dict[object, int] = {}

    def channel_index(stats: Any) -> int:
        codes = (stats.network, stats.station, stats.location, stats.channel)
        # A code-less trace cannot be told apart from another one: a channel of its own.
        key = codes if any(codes) else object()
        return channels.setdefault(key, len(channels))

    def traces() -> Iterable[Trace]:
        for tr in stream:
            stats = tr.stats
            headers = plain(stats.get(header_key)) if header_key else {}
            if stats.calib != 1.0:
                headers["calib"] = float(stats.calib)
            meta = TraceMeta(
                index=channel_index(stats),
                network=stats.network,
                station=stats.station,
                location=stats.location,
                channel=stats.channel,
                headers=headers,
            )
            data = np.ascontiguousarray(tr.data, dtype=tr.data.dtype.newbyteorder("="))
            yield Trace(data, float(stats.sampling_rate), round_us(stats.starttime.ns), meta)

    blocks = group_traces(traces())
    return Recording(fmt, blocks, source=name, file_headers=file_headers or {})


def recording_to_stream(
    recording: Recording,
    header_key: str | None = None,
    cast: Callable[[np.ndarray], np.ndarray] | None = None,
    drop: frozenset[str] = frozenset(),
) -> Stream:
    """One ObsPy Trace per row; ``cast`` converts samples, ``drop`` leaves header keys out."""
    from obspy import Stream, Trace, UTCDateTime
    from obspy.core import AttribDict

    stream = Stream()
    for block in recording.blocks:
        start = UTCDateTime(ns=block.starttime_ns)
        for meta, row in zip(block.traces, block.data, strict=True):
            tr = Trace(data=cast(row) if cast else np.ascontiguousarray(row))
            stats = tr.stats
            stats.sampling_rate = block.sampling_rate
            stats.starttime = start
            stats.network, stats.station = meta.network, meta.station
            stats.location, stats.channel = meta.location, meta.channel
            stats.calib = meta.headers.get("calib", 1.0)
            if header_key:
                kept = {k: v for k, v in meta.headers.items() if k not in drop and k != "calib"}
                stats[header_key] = AttribDict(kept)
            stream.append(tr)
    return stream


def same_waveforms(a: Recording, b: Recording, cast: Callable[[np.ndarray], np.ndarray]) -> bool:
    """True if ``b`` has ``a``'s samples (after ``cast``), rates, µs start times and SEED ids."""
    if len(a.blocks) != len(b.blocks):
        return False
    for x, y in zip(a.blocks, b.blocks, strict=True):
        ids_x = [(t.network, t.station, t.location, t.channel) for t in x.traces]
        ids_y = [(t.network, t.station, t.location, t.channel) for t in y.traces]
        if (
            ids_x != ids_y
            or exact_rate(x.sampling_rate) != exact_rate(y.sampling_rate)
            or round_us(x.starttime_ns) != y.starttime_ns
            or x.data.shape != y.data.shape
            or not np.array_equal(cast(x.data), y.data, equal_nan=y.data.dtype.kind == "f")
        ):
            return False
    return True


def survives(
    recording: Recording,
    write: Callable[[Recording, Any], None],
    read: Callable[[Path, str], Recording],
    cast: Callable[[np.ndarray], np.ndarray],
) -> bool:
    """Trial write and read-back in a temporary file: is the format lossless for this data?

    For small single-purpose formats (SAC, GSE2) where ObsPy's writer decides what is kept.
    """
    with tempfile.TemporaryDirectory(prefix="ccs-trial-") as tmp:
        path = Path(tmp) / "trial"
        try:
            with open(path, "wb") as out:
                write(recording, out)
            back = read(path, os.fspath(path))
        except (FormatError, ValueError, TypeError, OverflowError):
            return False
    return same_waveforms(recording, back, cast)
