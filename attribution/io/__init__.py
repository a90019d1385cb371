"""Readers of batch inputs: aggregated path files and raw event logs.

The readers report bad records as :class:`InvalidRow` entries (line and reason) instead of
stopping, and raise :class:`ReadError` only when the file as a whole cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class InvalidRow:
    """A record that was skipped: where it is (1-based line, or row for Parquet) and why."""

    line: int
    reason: str

    def to_json(self) -> dict[str, int | str]:
        """The JSON Lines entry of an invalid-records report."""
        return {"line": self.line, "reason": self.reason}


class ReadError(ValueError):
    """The input cannot be read at all (missing column, unknown format, broken file)."""


def suffix_of(path: str | Path) -> str:
    """The format suffix of a file name, seeing through a ``.gz`` compression suffix."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""
