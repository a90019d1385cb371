"""Options shared by the attribution models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelOptions:
    """Knobs of the models; defaults match config/defaults.toml."""

    order: int = 1
    max_steps: int | None = None
    direct_channel: str = "direct"
    half_life_days: float = 7.0
    # Markov states: "merged" repeats (the default) or "raw" (ChannelAttribution's); see
    # attribution/models/markov_counts.py. Last, so positional construction keeps working.
    markov_states: Literal["merged", "raw"] = "merged"
