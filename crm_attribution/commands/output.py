"""Where a batch command writes its answer: stdout, or a file given with -o/--output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from crm_attribution.cli import UserError


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
