"""Helpers shared by the subcommands: settings, the broker address, readable errors."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from crm_attribution.cli import UserError

if TYPE_CHECKING:
    from config.settings import AttributionSettings, Settings
    from config.shipped import ShippedAttribution


def settings_from(args: argparse.Namespace) -> Settings:
    """Load settings, turning a bad setting into a readable error."""
    # Imported here: pydantic takes about 0.15 s to import, which the fast path below avoids.
    from config.settings import SettingsError, load_settings

    try:
        return load_settings(getattr(args, "config", None))
    except SettingsError as error:
        raise UserError(f"{error}. Fix the setting in the config file or environment.") from None


def attribution_settings_from(
    args: argparse.Namespace,
) -> AttributionSettings | ShippedAttribution:
    """The ``[attribution]`` settings: the shipped ones when nothing overrides them."""
    from config.shipped import shipped_attribution

    shipped = shipped_attribution(getattr(args, "config", None))
    return shipped if shipped is not None else settings_from(args).attribution


def bootstrap_from(settings: Settings, explicit: str | None = None) -> str:
    """The broker to use: --bootstrap, configuration/environment, or the local broker."""
    if explicit:
        return explicit
    from stream.broker.launcher import resolve_bootstrap

    found = resolve_bootstrap(settings)
    if not found:
        raise UserError(
            "no Kafka broker configured and no local broker running. Start one with "
            "`crm-attribution broker start`, or set KAFKA_BOOTSTRAP_SERVERS=host:port."
        )
    return found
