"""The in-memory type every reader returns and every writer takes.

Multi-thousand-trace files are the norm offshore, so traces that share start time, sample
rate and length are held as one 2-D array (traces × samples), not as thousands of Python
objects. Times are integer nanoseconds since 1970-01-01 UTC so that grid arithmetic is exact.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

NS_PER_S = 1_000_000_000


@dataclass
class TraceMeta:
    """Identity of one trace.

    ``index`` is the trace's 0-based position in the source file; for formats read through
    ObsPy, the channel's order of first appearance (the segments of a channel with gaps share
    it, see ``obspy_bridge.stream_to_recording``). SEED-style codes are filled
    where the format carries them (MiniSEED, SAC, GSE2, ...), empty otherwise. ``headers``
    carries format-specific header words through decimation (e.g. SEG-Y trace header fields
    by segyio name) so a writer of the same format can restore them.
    """

    index: int
    network: str = ""
    station: str = ""
    location: str = ""
    channel: str = ""
    headers: MutableMapping[str, Any] = field(default_factory=dict)


class Timed:
    """Time arithmetic for anything with ``sampling_rate`` (Hz), ``starttime_ns`` and
    ``n_samples``: in-memory blocks and the layouts of streamed ones alike."""

    sampling_rate: float
    starttime_ns: int

    if TYPE_CHECKING:
        # A property here would swallow the dataclass field of the same name in subclasses
        # that store it; only the type checker needs to know it exists.
        @property
        def n_samples(self) -> int: ...

    @property
    def rate(self) -> Fraction:
        """The sample rate as an exact fraction (Hz), for grid arithmetic."""
        return exact_rate(self.sampling_rate)

    @property
    def endtime_ns(self) -> int:
        """Time just after the last sample (start + n / rate), ns."""
        return self.starttime_ns + round(self.n_samples * NS_PER_S / self.rate)


@dataclass
class Block(Timed):
    """Traces sharing start time, sample rate (Hz) and length.

    ``data`` has shape (len(traces), n_samples), in counts (integer dtypes) or physical units
    (float dtypes); ``starttime_ns`` is the time of the first sample.
    """

    data: np.ndarray
    sampling_rate: float
    starttime_ns: int
    traces: list[TraceMeta]

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or self.data.shape[0] != len(self.traces):
            raise ValueError(
                f"block data shape {self.data.shape} does not match {len(self.traces)} traces"
            )
        if not self.sampling_rate > 0:
            raise ValueError(f"sampling rate {self.sampling_rate} Hz must be positive")

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[1])

    @property
    def is_integer(self) -> bool:
        return self.data.dtype.kind in "iu"


@dataclass
class Recording:
    """One file's worth of waveforms, as read.

    ``format`` is the ObsPy-style format name (``SEGY``, ``SU``, ``SEG2``, ``MSEED``, ``SAC``,
    ``GSE2``, ...). ``file_headers`` carries format-level headers (e.g. SEG-Y textual and binary
    headers) for a writer of the same format.
    """

    format: str
    blocks: list[Block]
    source: str = ""
    file_headers: dict[str, Any] = field(default_factory=dict)

    @property
    def n_traces(self) -> int:
        return sum(len(b.traces) for b in self.blocks)

    @property
    def n_samples(self) -> int:
        return sum(b.data.size for b in self.blocks)


def exact_rate(rate_hz: float) -> Fraction:
    """A sample rate as an exact fraction; rates from µs intervals (e.g. 1e6/3) stay exact."""
    return Fraction(rate_hz).limit_denominator(1_000_000)
