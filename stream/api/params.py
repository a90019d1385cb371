"""Query parameters of the HTTP API, validated: a bad one is answered 400 with the reason."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from crm_attribution.settings.typed import KNOWN_MODELS


class BadRequest(ValueError):
    """A query parameter is invalid; answered with HTTP 400 and the reason."""


class NotFound(LookupError):
    """What the query names does not exist; answered with HTTP 404 and the reason."""


def parse_day(name: str, raw: str | None) -> str | None:
    """Validate a YYYY-MM-DD query parameter."""
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a date (expected YYYY-MM-DD)") from None


_FLAG_VALUES = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def parse_flag(name: str, raw: str | None) -> bool:
    """Validate a yes/no query parameter (1/true/yes or 0/false/no; absent or empty: no)."""
    if raw is None or raw == "":
        return False
    value = _FLAG_VALUES.get(raw.lower())
    if value is None:
        # Anything but "0" and "false" used to mean yes: "fresh=no" asked for a rebuild.
        raise BadRequest(f"{name}={raw!r} is not a yes/no value (expected 1 or 0)")
    return value


def parse_positive(name: str, raw: str | None, default: float, largest: float = math.inf) -> float:
    """Validate a positive, finite number query parameter of at most ``largest``."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a number") from None
    # float() takes "inf", "nan" and 1e308: each would overflow a date further on (HTTP 500).
    if not math.isfinite(value) or not 0 < value <= largest:
        raise BadRequest(f"{name}={raw!r} must be a number above 0 and at most {largest:g}")
    return value


def parse_models(computed: Sequence[str], raw: str | None) -> list[str]:
    """Validate a comma-separated model list against the models the stream computes."""
    if not raw or raw == "all":
        return list(computed)
    models = [m.strip() for m in raw.split(",") if m.strip()]
    for model in models:
        if model not in KNOWN_MODELS:
            raise BadRequest(f"unknown model {model!r}; known: {', '.join(KNOWN_MODELS)}")
        if model not in computed:
            raise BadRequest(f"model {model!r} is not computed by this stream (config models)")
    return models


@dataclass(frozen=True)
class CreditIntervals:
    """What ``/credits?ci=LEVEL&resamples=N&seed=S`` asks of the bootstrap."""

    level: float
    resamples: int = 200
    seed: int = 0

    def arguments(self) -> tuple[float, int, int]:
        """(level, resamples, seed)."""
        return self.level, self.resamples, self.seed


MAX_RESAMPLES = 10_000


def parse_intervals(query: Mapping[str, str]) -> CreditIntervals | None:
    """``ci`` (a level between 0 and 1), ``resamples`` (2 to 10,000) and ``seed``; None
    without ``ci``."""
    raw = query.get("ci")
    if raw is None or raw == "":
        for name in ("resamples", "seed"):
            if query.get(name):
                raise BadRequest(f"{name}= goes with ci= (e.g. ci=0.95)")
        return None
    try:
        level = float(raw)
    except ValueError:
        raise BadRequest(f"ci={raw!r} is not a number (a level such as 0.95)") from None
    if not 0 < level < 1:
        raise BadRequest(f"ci={raw!r} must be a level between 0 and 1 (e.g. 0.95)")
    return CreditIntervals(
        level,
        _integer(query, "resamples", 200, 2, MAX_RESAMPLES),
        _integer(query, "seed", 0, 0, 2**63 - 1),
    )


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}={raw!r} must be between {low:,} and {high:,}")
    return value
