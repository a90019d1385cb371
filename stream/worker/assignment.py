"""Refuse an assignment whose tables cannot be recovered: input partitions without changelogs.

The owner of input partition P recovers the tables from their changelogs' partition P, which
Faust's assignor hands out with it. A changelog topic missing from the group leader's metadata
(created a moment before the leader assigned, seen on the real broker) makes the assignor leave
it out with only a warning ("Ignoring missing topic"): the new owner of a partition then starts
that table empty for it, and reprocessing cannot bring back what the table held (events the
customer states already know add nothing). Processing such an assignment loses figures silently.
"""

from __future__ import annotations

from collections.abc import Iterable


def unrecovered_changelogs(
    assigned: Iterable[tuple[str, int]], inputs: Iterable[str], changelogs: Iterable[str]
) -> list[str]:
    """The changelog partitions (``topic[P]``) missing for the assigned input partitions."""
    held = set(assigned)
    input_topics = set(inputs)
    partitions = sorted({partition for topic, partition in held if topic in input_topics})
    return [
        f"{changelog}[{partition}]"
        for changelog in sorted(set(changelogs))
        for partition in partitions
        if (changelog, partition) not in held
    ]


def refusal(missing: list[str]) -> str:
    """The one line a worker logs before exiting on such an assignment."""
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return (
        f"the group's assignment gave this worker input partitions without their tables' "
        f"changelog partitions ({shown}; the group leader's metadata did not list the topic): "
        "processing would start those tables empty"
    )
