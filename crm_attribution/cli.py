"""The ``crm-attribution`` console command: one entry point, one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# Subcommand name -> module under crm_attribution.commands. Modules are imported lazily so
# that the batch commands start fast and never import Faust: a command line that names its
# subcommand imports that one module only (and rich only when there is something to show).
COMMANDS = {
    "attribute": "attribute",
    "report": "report",
    "broker": "broker",
    "worker": "worker",
    "produce": "produce",
    "generate": "generate",
    "query": "query",
    "demo": "demo",
    "export": "export",
    "sink": "sink",
    "schema": "schema",
}


# Commands whose process ends right after their output is flushed, skipping the interpreter's
# teardown (a last garbage collection and the unloading of numpy and pyarrow: 30-40 ms of a
# ~0.5 s `attribute` run). They hold nothing that needs it: their files are closed by `with`,
# their threads are joined, they register no atexit work.
QUICK_EXIT = frozenset({"attribute"})
# Commands that read whole event logs: their allocators return freed memory at once
# (crm_attribution/memory.py), which keeps their peak memory to what the data needs.
READS_LOGS = frozenset({"attribute", "report", "produce"})


class UserError(Exception):
    """An error caused by input or environment; printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def named_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when only ``--config FILE`` comes before it.

    Anything else before the subcommand (``--help``, an abbreviated option, a typo) gets the
    full parser, so that help and usage errors list every subcommand as before.
    """
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--config":
            i += 2
        elif token.startswith("--config="):
            i += 1
        else:
            return token if token in COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every available subcommand (or just ``only``) registered."""
    parser = argparse.ArgumentParser(
        prog="crm-attribution",
        description="Streaming multi-touch attribution and customer analytics for CRM channels.",
    )
    parser.add_argument("--config", help="TOML file overriding config/defaults.toml")
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(f"crm_attribution.commands.{module_name}")
        except ModuleNotFoundError as error:
            if error.name == f"crm_attribution.commands.{module_name}":
                continue  # subcommand not built yet
            raise
        module.register(sub)
    show_defaults(parser)
    return parser


def package_version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crm-attribution")
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        with pyproject.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends each option with its default, unless the text already says it.

    Unlike argparse's ArgumentDefaultsHelpFormatter, options without a default (None) or flags
    (False) get nothing appended: "(default: None)" tells a reader nothing.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default == argparse.SUPPRESS
            or not action.option_strings
        ):
            return action.help
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def show_defaults(parser: argparse.ArgumentParser) -> None:
    """Use :class:`DefaultsHelpFormatter` in ``parser`` and all of its subcommands."""
    parser.formatter_class = DefaultsHelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                show_defaults(child)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code.

    Called without ``argv`` (as the program itself), a :data:`QUICK_EXIT` command that
    completes ends the process once its output is flushed.
    """
    as_program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    command = named_command(argv)
    if as_program and command in READS_LOGS:
        from crm_attribution.memory import release_freed_memory_promptly

        release_freed_memory_promptly()
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        code = int(args.handler(args) or 0)
        if as_program and args.command in QUICK_EXIT:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except UserError as error:
        _stderr().print(f"[bold red]error:[/] {error}", highlight=False)
        return error.exit_code
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        return 130
    except BrokenPipeError:
        return 0


def _stderr() -> Console:
    from rich.console import Console

    # soft_wrap: a message is one line in logs, not cut at 80 columns when stderr is a pipe.
    return Console(stderr=True, soft_wrap=True)


if __name__ == "__main__":
    # `python -m crm_attribution.cli`: run the module the subcommands import, whose UserError
    # they raise (this copy, __main__, has a UserError class of its own).
    from crm_attribution.cli import main as package_main

    sys.exit(package_main())
