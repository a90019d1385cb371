"""Columnar table of journeys (paths), the common input of every attribution model.

A path table holds many journeys at once in flat numpy arrays so that the models
can be vectorised: ``codes[offsets[i]:offsets[i+1]]`` are the channel codes of path
``i`` in touch order; ``channels[code]`` is the channel name. Duplicate paths may
appear as separate rows: every model treats rows additively.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PathTable:
    """Journeys as flat arrays; see the module docstring for the layout."""

    channels: tuple[str, ...]
    offsets: NDArray[np.int64]
    codes: NDArray[np.int64]
    conversions: NDArray[np.float64]
    value: NDArray[np.float64]
    nulls: NDArray[np.float64]
    # Days between each touch and the conversion that closed its path (aligned with
    # ``codes``); only known for journeys built from raw events (time decay needs it).
    ages_days: NDArray[np.float64] | None = None

    @property
    def n_paths(self) -> int:
        """Number of path rows."""
        return len(self.offsets) - 1

    @property
    def lengths(self) -> NDArray[np.int64]:
        """Number of touches of each path row."""
        return np.diff(self.offsets)

    def path(self, i: int) -> tuple[str, ...]:
        """Channel names of path row ``i``."""
        return tuple(self.channels[c] for c in self.codes[self.offsets[i] : self.offsets[i + 1]])

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[Sequence[str]],
        conversions: Iterable[float],
        value: Iterable[float] | None = None,
        nulls: Iterable[float] | None = None,
        ages_days: Iterable[Sequence[float]] | None = None,
        channels: Sequence[str] | None = None,
    ) -> PathTable:
        """Build a table from Python sequences (tests, the stream, small inputs)."""
        path_list = [tuple(p) for p in paths]
        conv = np.asarray(list(conversions), dtype=np.float64)
        n = len(path_list)
        val = np.zeros(n) if value is None else np.asarray(list(value), dtype=np.float64)
        nul = np.zeros(n) if nulls is None else np.asarray(list(nulls), dtype=np.float64)
        names: list[str] = list(channels) if channels is not None else []
        index = {name: i for i, name in enumerate(names)}
        if channels is None:
            for p in path_list:
                for name in p:
                    if name not in index:
                        index[name] = len(names)
                        names.append(name)
        lengths = np.fromiter((len(p) for p in path_list), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        codes = np.fromiter(
            (index[name] for p in path_list for name in p), dtype=np.int64, count=int(offsets[-1])
        )
        ages = None
        if ages_days is not None:
            ages = np.fromiter(
                (a for row in ages_days for a in row), dtype=np.float64, count=int(offsets[-1])
            )
        return cls(tuple(names), offsets, codes, conv, val, nul, ages)
