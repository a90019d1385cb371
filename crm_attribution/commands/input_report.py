"""What the file-reading commands say about their input: progress and invalid records."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from crm_attribution.cli import UserError

SHOWN_INVALID = 20


@contextmanager
def progress_bar(err: Console, label: str) -> Iterator[Any]:
    """A progress bar on stderr, shown only on a terminal (stdout stays clean JSON)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
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


def report_invalid(args: argparse.Namespace, invalid: list[Any], err: Console) -> None:
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
