"""Helpers shared by the subcommands: settings, the broker address, output files, errors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_attribution.cli import UserError

if TYPE_CHECKING:
    from crm_attribution.settings.shipped import ShippedAttribution
    from crm_attribution.settings.typed import AttributionSettings, Settings


def settings_from(args: argparse.Namespace) -> Settings:
    """Load settings, turning a bad setting into a readable error."""
    # Imported here: pydantic takes about 0.15 s to import, which the fast path below avoids.
    from crm_attribution.settings.typed import SettingsError, load_settings

    try:
        return load_settings(getattr(args, "config", None))
    except SettingsError as error:
        raise UserError(f"{error}. Fix the setting in the config file or environment.") from None


def attribution_settings_from(
    args: argparse.Namespace,
) -> AttributionSettings | ShippedAttribution:
    """The ``[attribution]`` settings: the shipped ones when nothing overrides them."""
    from crm_attribution.settings.shipped import shipped_attribution

    shipped = shipped_attribution(getattr(args, "config", None))
    return shipped if shipped is not None else settings_from(args).attribution


def apply_record_limits(args: argparse.Namespace) -> None:
    """Put the ``[validation]`` bounds in force; the shipped ones need no settings loaded."""
    from crm_attribution.settings.shipped import overridden

    if not overridden(getattr(args, "config", None), os.environ):
        return  # attribution/limits.py's defaults are defaults.toml's (a test keeps them so)
    from attribution.limits import RecordLimits, set_record_limits

    set_record_limits(RecordLimits.from_settings(settings_from(args).validation))


def money_from(args: argparse.Namespace) -> tuple[Any, str]:
    """(MoneySettings, time zone) from ``[business]``: base currency, rates file, time zone."""
    from attribution.money import MoneySettings, RatesFileError, read_rates_file
    from crm_attribution.settings.shipped import shipped_business

    business: Any = shipped_business(getattr(args, "config", None))
    if business is None:
        business = settings_from(args).business
    rates: tuple[Any, ...] = ()
    if business.rates_file:
        try:
            rates = read_rates_file(business.rates_file)
        except RatesFileError as error:
            raise UserError(f"{error} (setting business.rates_file)") from None
    return MoneySettings(business.base_currency, rates), business.time_zone


def bootstrap_from(settings: Settings, explicit: str | None = None) -> str:
    """The broker to use: --bootstrap, configuration/environment, or the local broker.

    With TLS or SASL configured, this process has also connected and logged in to it.
    """
    if explicit:
        check_kafka_access(explicit, settings)
        return explicit
    from stream.broker.launcher import resolve_bootstrap

    found = resolve_bootstrap(settings)
    if not found:
        raise UserError(
            "no Kafka broker configured and no local broker running. Start one with "
            "`crm-attribution broker start`, or set KAFKA_BOOTSTRAP_SERVERS=host:port."
        )
    check_kafka_access(found, settings)
    return found


def check_kafka_access(bootstrap: str, settings: Settings) -> None:
    """With TLS or SASL configured: connect and log in once, or say in one line what failed.

    A secured connection fails in ways the clients do not tell apart (kafka-python waits out its
    timeout, then "Unable to bootstrap"): an untrusted certificate, a wrong password, a listener
    of another protocol. Without TLS or SASL the only failure is that nothing answers, which
    the commands already word.
    """
    if settings.kafka.security_protocol == "PLAINTEXT":
        return
    from stream.kafka.preflight import KafkaUnusable, check_kafka
    from stream.kafka.security import KafkaSecurityError

    try:
        check_kafka(bootstrap, settings.kafka)
    except KafkaSecurityError as error:
        raise UserError(f"{error}. Fix the setting in the config file or environment.") from None
    except KafkaUnusable as error:
        raise UserError(str(error)) from None


def check_output_args(args: argparse.Namespace) -> bool:
    """Validate --format/--output before any work; True when the answer is the HTML dashboard."""
    html = args.format == "html"
    if html and not args.output:
        raise UserError("--format html writes a file: give it with -o FILE (e.g. -o report.html)")
    if args.output and args.format == "table":
        raise UserError("--format table is for the terminal; use json or html with -o FILE")
    if args.output:
        target = Path(args.output)
        if target.is_dir():
            raise UserError(f"-o {target}: is a directory, not a file")
        if not target.parent.exists():
            raise UserError(f"-o {target}: directory {target.parent} does not exist")
    return html


def write_output(output: str | None, text: str, err: Any) -> None:
    """Write ``text`` to the file ``output`` (saying so on stderr), or to stdout."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write {output}: {error.strerror or error}") from None
    err.print(f"wrote {output} ({len(text.encode('utf-8')) / 1e6:.1f} MB)", highlight=False)
