"""Query parameters of the HTTP API, validated: a bad one is answered 400 with the reason."""

from __future__ import annotations

import math
from collections.abc import Sequence
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
