"""What the file-reading commands say about their input: progress and invalid records."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from crm_attribution.cli import UserError

if TYPE_CHECKING:
    from rich.console import Console

SHOWN_INVALID = 20


def stderr_may_be_terminal() -> bool:
    """False when rich would certainly not treat stderr as a terminal (its own rules).

    Lets the file commands skip importing rich (about 50 ms) when stderr is a pipe or a file:
    ``TTY_COMPATIBLE=0`` says no, ``TTY_COMPATIBLE=1`` or ``FORCE_COLOR`` say yes, and
    otherwise it is whether stderr is a TTY. When this says True, rich still decides.
    """
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible == "0":
        return False
    if tty_compatible == "1" or os.environ.get("FORCE_COLOR") is not None:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class StderrConsole:
    """A rich Console on stderr, created (and rich imported) only when something is shown."""

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The Console itself."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    @property
    def is_terminal(self) -> bool:
        """Whether rich shows live output (progress bars) on stderr."""
        return stderr_may_be_terminal() and self.console.is_terminal

    def print(self, *objects: Any, **options: Any) -> None:
        """``Console.print`` on stderr."""
        self.console.print(*objects, **options)


@contextmanager
def progress_bar(err: Console | StderrConsole, label: str) -> Iterator[Any]:
    """A progress bar on stderr, shown only on a terminal (stdout stays clean JSON)."""
    if not err.is_terminal:
        # What rich's disabled Progress would do: nothing (and rich is not imported).
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}"),
        TimeRemainingColumn(),
        console=err if not isinstance(err, StderrConsole) else err.console,
        transient=True,
    )
    with progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def fail_if_strict(args: argparse.Namespace, invalid: list[Any]) -> None:
    """With --strict, stop at the first invalid record (exit code 2)."""
    if args.strict and invalid:
        first = invalid[0]
        more = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
        raise UserError(
            f"{args.input}: line {first.line}: {first.reason}{more}; "
            "--strict stops at invalid records"
        )


def report_invalid(
    args: argparse.Namespace, invalid: list[Any], err: Console | StderrConsole
) -> None:
    """Print the first invalid records on stderr; write all of them with --invalid-report."""
    if args.invalid_report:
        try:
            with open(args.invalid_report, "w", encoding="utf-8") as handle:
                for row in invalid:
                    handle.write(json.dumps(row.to_json()) + "\n")
        except OSError as error:
            raise UserError(f"cannot write {args.invalid_report}: {error.strerror}") from None
    if not invalid:
        return
    err.print(f"{len(invalid)} invalid records skipped:", highlight=False, soft_wrap=True)
    for row in invalid[:SHOWN_INVALID]:
        err.print(f"  line {row.line}: {row.reason}", highlight=False, markup=False, soft_wrap=True)
    if len(invalid) > SHOWN_INVALID:
        err.print(f"  ... and {len(invalid) - SHOWN_INVALID} more", highlight=False)


def fail_if_nothing_valid(
    args: argparse.Namespace,
    valid: int,
    invalid: list[Any],
    err: Console | StderrConsole,
    what: str,
    when: str = "",
    noun: str = "event",
) -> None:
    """Stop (exit 2) when no valid record is left, after saying which records were skipped."""
    if valid:
        return
    report_invalid(args, invalid, err)
    why = f" ({len(invalid)} invalid records)" if invalid else ""
    raise UserError(f"{args.input} holds no valid {noun}{when}{why}: nothing to {what}")


@contextmanager
def stage_status(err: Console | StderrConsole, label: str) -> Iterator[Any]:
    """A spinner on stderr naming the step under way (a step has no count to show a bar of)."""
    if not err.is_terminal:
        yield lambda stage: None
        return
    console = err if not isinstance(err, StderrConsole) else err.console
    with console.status(f"{label}...") as status:

        def stage(step: str) -> None:
            status.update(f"{label}: {step}...")

        yield stage
