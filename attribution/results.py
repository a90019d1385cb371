"""Result types of attribution models and their JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChannelCredit:
    """Credit given to one channel by one model."""

    conversions: float = 0.0
    value: float = 0.0
    removal_effect: float | None = None
    removal_effect_value: float | None = None

    def to_json(self) -> dict[str, float]:
        """JSON object; removal effects only where the model has them."""
        out = {"conversions": self.conversions, "value": self.value}
        if self.removal_effect is not None:
            out["removal_effect"] = self.removal_effect
        if self.removal_effect_value is not None:
            out["removal_effect_value"] = self.removal_effect_value
        return out


@dataclass
class ModelResult:
    """Channel credits of one model, plus model-specific extras (Markov)."""

    model: str
    channels: dict[str, ChannelCredit]
    conversion_probability: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``models.<name>`` object of the ``attribute`` command's JSON."""
        out: dict[str, Any] = {
            "channels": {name: credit.to_json() for name, credit in sorted(self.channels.items())}
        }
        if self.conversion_probability is not None:
            out["conversion_probability"] = self.conversion_probability
        return out

    def total_conversions(self) -> float:
        """Sum of the conversions credited to all channels."""
        return sum(c.conversions for c in self.channels.values())

    def total_value(self) -> float:
        """Sum of the value credited to all channels."""
        return sum(c.value for c in self.channels.values())
