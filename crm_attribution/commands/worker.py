"""``crm-attribution worker``: run a stream worker against the configured broker."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from crm_attribution.cli import UserError
from crm_attribution.commands.common import (
    apply_record_limits,
    bootstrap_from,
    money_from,
    settings_from,
)

if TYPE_CHECKING:
    from crm_attribution.settings.typed import Settings

# Exit code of a worker that cannot start because Kafka does not answer (as `produce`: 2).
UNREACHABLE_EXIT = 2
# Exit code of a worker whose topics' partition counts differ from the configuration.
MISMATCH_EXIT = 6


def register(sub: argparse._SubParsersAction) -> None:
    """Add the subcommand."""
    p = sub.add_parser("worker", help="run a stream worker (Faust) against Kafka")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (default: configured or local)")
    p.add_argument("--web-port", type=int, help="HTTP port (default: config worker.web_port)")
    p.add_argument(
        "--data-dir", help="where the worker keeps its state (default: config worker.data_dir)"
    )
    p.add_argument("--tick-seconds", type=float, default=5.0, help="seconds between expiry ticks")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run until stopped."""
    apply_record_limits(args)
    from stream.worker.run import run_worker

    settings = settings_from(args)
    bootstrap = bootstrap_from(settings, args.bootstrap)
    if args.web_port is not None and not 0 < args.web_port < 65536:
        raise UserError(f"--web-port {args.web_port} is not a TCP port")
    money_from(args)  # a rates file that cannot be used is one line here, not a traceback later
    check_broker(bootstrap, settings)

    run_worker(
        settings,
        bootstrap,
        web_port=args.web_port,
        data_dir=args.data_dir,
        tick_seconds=args.tick_seconds,
    )
    return 0


def check_broker(bootstrap: str, settings: Settings) -> None:
    """Create the pipeline's topics now, so that an unreachable broker is one clear line.

    The worker creates them too (stream/worker/run.py) after it configured logging, where a
    failure surfaces as the Kafka client's traceback; asked first, before anything logs, the
    client stays quiet (its loggers have no handler yet) and the error is ours to word.
    """
    from stream.kafka.admin import TopicMismatch, ensure_topics

    try:
        ensure_topics(bootstrap, settings)
    except TopicMismatch as error:
        raise UserError(f"cannot start the worker: {error}", MISMATCH_EXIT) from None
    except Exception as error:  # noqa: BLE001 - any client failure means the broker is unusable
        raise UserError(
            f"cannot reach Kafka at {bootstrap}: {error}. Start it with `crm-attribution "
            "broker start`, or point KAFKA_BOOTSTRAP_SERVERS / --bootstrap at a running broker.",
            UNREACHABLE_EXIT,
        ) from None
