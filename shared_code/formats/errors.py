"""The one error every reader and writer raises for bad input."""

from __future__ import annotations


class FormatError(ValueError):
    """A file cannot be read or written as waveforms.

    The message is ``"<name>: <reason>"``; ``name`` is the display name (e.g. the blob name),
    not the local staging path, and ``reason`` says what is wrong in words an operator can act
    on (empty, truncated, not seismic data, unsupported sample format, ...).
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason
