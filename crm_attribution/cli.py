"""The ``crm-attribution`` console command: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rich.console import Console

# Subcommand name -> module under crm_attribution.commands. Modules are imported lazily so
# that the batch commands start fast and never import Faust.
COMMANDS = {
    "attribute": "attribute",
    "report": "report",
    "broker": "broker",
    "worker": "worker",
    "produce": "produce",
    "generate": "generate",
    "query": "query",
    "demo": "demo",
}


class UserError(Exception):
    """An error caused by input or environment; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="crm-attribution",
        description="Streaming multi-touch attribution and customer analytics for CRM channels.",
    )
    parser.add_argument("--config", help="TOML file overriding config/defaults.toml")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        try:
            module = importlib.import_module(f"crm_attribution.commands.{module_name}")
        except ModuleNotFoundError as error:
            if error.name == f"crm_attribution.commands.{module_name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    # soft_wrap: a message is one line in logs, not cut at 80 columns when stderr is a pipe.
    err = Console(stderr=True, soft_wrap=True)
    try:
        return int(args.handler(args) or 0)
    except UserError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False)
        return error.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
