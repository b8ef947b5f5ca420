"""Any other waveform format ObsPy reads (its own content detection), read-only.

Last in the registry. The formats with their own module here are skipped so that a file
they rejected is not read half-right by ObsPy's looser check. ObsPy's plugin table is
private API (``obspy.core.util.base``); checked against ObsPy 1.5.
"""

from __future__ import annotations

from pathlib import Path

from shared_code.formats import obspy_bridge
from shared_code.formats.errors import FormatError
from shared_code.waveforms import Recording

NAME = "OBSPY"
EXTENSION = "mseed"
#: Formats with their own module (ObsPy names).
OWN = frozenset({"SEGY", "SU", "SEG2", "MSEED", "SAC", "GSE2"})


def obspy_format(path: Path) -> str | None:
    """The ObsPy format name whose content check accepts the file, or None."""
    from obspy.core.util.base import ENTRY_POINTS, buffered_load_entry_point

    for ep in ENTRY_POINTS["waveform"].values():
        if ep.name in OWN:
            continue
        try:
            check = buffered_load_entry_point(
                ep.dist.name, f"obspy.plugin.waveform.{ep.name}", "isFormat"
            )
            if check(str(path)):
                return str(ep.name)
        except Exception:  # a failing plugin check means "not this format"
            continue
    return None


def is_obspy(path: Path) -> bool:
    """True if some other ObsPy waveform plugin recognises the file."""
    return obspy_format(path) is not None


def read(path: Path, name: str) -> Recording:
    """Read with the ObsPy plugin that recognises the file; ``format`` is ObsPy's name."""
    fmt = obspy_format(path)
    if fmt is None:
        raise FormatError(name, "not seismic data: no ObsPy waveform reader recognises it")
    stream = obspy_bridge.read_stream(path, name, fmt)
    return obspy_bridge.stream_to_recording(stream, fmt, name, fmt.lower())
