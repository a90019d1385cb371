"""Helpers shared by the subcommands: settings, the broker address, readable errors."""

from __future__ import annotations

import argparse

from config.settings import Settings, SettingsError, load_settings
from crm_attribution.cli import UserError


def settings_from(args: argparse.Namespace) -> Settings:
    """Load settings, turning a bad setting into a readable error."""
    try:
        return load_settings(getattr(args, "config", None))
    except SettingsError as error:
        raise UserError(f"{error}. Fix the setting in the config file or environment.") from None


def bootstrap_from(settings: Settings, explicit: str | None = None) -> str:
    """The broker to use: --bootstrap, configuration/environment, or the local broker."""
    if explicit:
        return explicit
    from stream.broker import resolve_bootstrap

    found = resolve_bootstrap(settings)
    if not found:
        raise UserError(
            "no Kafka broker configured and no local broker running. Start one with "
            "`crm-attribution broker start`, or set KAFKA_BOOTSTRAP_SERVERS=host:port."
        )
    return found
