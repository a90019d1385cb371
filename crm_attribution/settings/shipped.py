"""The shipped ``[attribution]`` defaults, read without pydantic, for commands that start fast.

:func:`crm_attribution.settings.typed.load_settings` validates defaults + config file +
environment with pydantic, whose import alone takes about 0.15 s: a third of a whole
``attribute`` run. When no config file is named (``--config`` or ``CRM_CONFIG_FILE``) and no
``CRM_<SECTION>__<NAME>`` variable is set, what it returns is just ``defaults.toml``, which the
tests validate (tests/cli/test_fast_start.py). Then the batch commands read its
``[attribution]`` table directly; in every other case they go through ``load_settings`` and its
validation as before. ``KAFKA_BOOTSTRAP_SERVERS`` only ever sets ``kafka.bootstrap_servers``
(any string is valid), so it cannot change or invalidate the attribution settings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

DEFAULTS_FILE = Path(__file__).with_name("defaults.toml")
ENV_PREFIX = "CRM_"


@dataclass(frozen=True)
class ShippedAttribution:
    """The ``[attribution]`` section of defaults.toml, fields as in ``AttributionSettings``."""

    channels: list[str]
    crm_channels: list[str]
    direct_channel: str
    lookback_days: float
    journey_timeout_days: float
    allowed_lateness_hours: float
    half_life_days: float
    models: list[str]
    markov_order: int
    markov_refresh_seconds: float
    markov_states: Literal["merged", "raw"] = "merged"
    credit_intervals: bool = False

    @property
    def timeout_days(self) -> float:
        """Journey timeout in days (the lookback when unset)."""
        return self.journey_timeout_days or self.lookback_days


def overridden(config_file: str | Path | None, environ: Mapping[str, str]) -> bool:
    """Whether a config file or an environment variable may change the shipped settings."""
    if config_file or environ.get("CRM_CONFIG_FILE"):
        return True
    # The names load_settings reads as CRM_<SECTION>__<NAME> overrides (or rejects).
    return any(name.startswith(ENV_PREFIX) and "__" in name for name in environ)


def shipped_attribution(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ShippedAttribution | None:
    """The shipped attribution settings, or None when ``load_settings`` must be asked."""
    env = os.environ if environ is None else environ
    if overridden(config_file, env):
        return None
    try:
        with DEFAULTS_FILE.open("rb") as handle:
            section: dict[str, Any] = tomllib.load(handle)["attribution"]
        return ShippedAttribution(
            channels=[str(c) for c in section["channels"]],
            crm_channels=[str(c) for c in section["crm_channels"]],
            direct_channel=str(section["direct_channel"]),
            lookback_days=float(section["lookback_days"]),
            journey_timeout_days=float(section["journey_timeout_days"]),
            allowed_lateness_hours=float(section["allowed_lateness_hours"]),
            half_life_days=float(section["half_life_days"]),
            models=[str(m) for m in section["models"]],
            markov_order=int(section["markov_order"]),
            markov_refresh_seconds=float(section["markov_refresh_seconds"]),
            markov_states=_markov_states(section["markov_states"]),
            credit_intervals=_flag(section["credit_intervals"]),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError):
        return None  # let load_settings report what is wrong, as it always did


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _markov_states(value: Any) -> Literal["merged", "raw"]:
    if value == "merged":
        return "merged"
    if value == "raw":
        return "raw"
    raise ValueError(value)  # load_settings words the error


@dataclass(frozen=True)
class ShippedBusiness:
    """The ``[business]`` section of defaults.toml, fields as in ``BusinessSettings``."""

    base_currency: str
    rates_file: str
    time_zone: str


def shipped_business(
    config_file: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> ShippedBusiness | None:
    """The shipped business settings, or None when ``load_settings`` must be asked."""
    env = os.environ if environ is None else environ
    if overridden(config_file, env):
        return None
    try:
        with DEFAULTS_FILE.open("rb") as handle:
            section: dict[str, Any] = tomllib.load(handle)["business"]
        shipped = ShippedBusiness(
            base_currency=str(section["base_currency"]),
            rates_file=str(section["rates_file"]),
            time_zone=str(section["time_zone"]),
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError):
        return None
    # What load_settings would check: leave anything else to its error message.
    return shipped if shipped.base_currency and shipped.time_zone == "UTC" else None
