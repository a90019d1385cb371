"""``crm-attribution schema``: the JSON Schema of the events, for producers to code against."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the subcommand."""
    from attribution.events import EVENT_TYPES

    p = sub.add_parser(
        "schema",
        help="write the JSON Schema of the events (every type, or one)",
        description=(
            "Write the JSON Schema (draft 2020-12) of the event records, made from the very "
            "models that validate them (attribution/events.py): all types as one schema whose "
            "'type' field selects the record's type, or one type with --type."
        ),
    )
    p.add_argument(
        "--type",
        dest="event_type",
        choices=EVENT_TYPES,
        help="only this event type (default: every type)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print or write the schema."""
    from attribution.events import event_json_schema
    from crm_attribution.commands.common import write_output
    from crm_attribution.commands.input_report import StderrConsole

    text = json.dumps(event_json_schema(args.event_type), indent=2, sort_keys=True) + "\n"
    write_output(args.output, text, StderrConsole())
    return 0
