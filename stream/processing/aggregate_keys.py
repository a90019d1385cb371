"""Keys of the aggregates table, built and read here only.

Every key starts with the number of the partition whose events wrote it, then its kind:

``P|totals``        conversions, value, null paths, unattributed conversions, invalid records,
                    and ``wm``: the newest event time seen in the partition (epoch ms)
``P|credits``       model -> channel -> [conversions, value], all time
``P|daily|DAY``     ``totals`` and model -> channel -> [conversions, value] for that UTC day
``P|conv|DAY|B``    converted journeys of that day (bucket B of 8; of 32 in tables written from
                    2026-12-02 to 12-06), for the customer analytics: [customer_id, journey row]
                    of each purchase, as one compressed block (stream.processing.journey_blocks)
``P|null|DAY|B``    with ``attribution.credit_intervals``, the null paths whose first touch is on
                    that day (bucket B as for ``conv``), the same way
``P|markov|STATE``  out-edges of a Markov state: {"to": {state: weight}, "cv": v, "cc": c}
``P|tick``          the expiry clock last applied to the partition
``P|offsets``       next input offset to process, per topic (see stream.processing.offsets)
``P|costs``         the partition's campaign cost events (see stream.processing.analytics_parts)
``P|funnel``        the funnel counts of the partition's customers: {"n": customers counted,
                    "counts": {campaign: {interaction or "reached": customers}}}, kept as
                    their funnel parts grow (see stream.processing.aggregates.record_funnel)
``P|rates``         the rate events the partition received, in arrival order: [event_id,
                    currency, since (epoch ms), rate] (see stream.processing.money)

Few, larger keys rather than many small ones: every write is a changelog message.
"""

from __future__ import annotations

TOTALS = "totals"
CREDITS = "credits"
DAILY = "daily"
CONVERSIONS = "conv"
NULL_PATHS = "null"
MARKOV = "markov"
TICK = "tick"
OFFSETS = "offsets"
COSTS = "costs"
FUNNEL = "funnel"
RATES = "rates"


def totals(partition: int) -> str:
    """``P|totals``."""
    return f"{partition}|{TOTALS}"


def credits(partition: int) -> str:
    """``P|credits``."""
    return f"{partition}|{CREDITS}"


def daily(partition: int, day: str) -> str:
    """``P|daily|DAY``."""
    return f"{partition}|{DAILY}|{day}"


def conversions(partition: int, day: str, bucket: int | None) -> str:
    """``P|conv|DAY|B``; without a bucket, the day's single key of tables written before them."""
    day_key = f"{partition}|{CONVERSIONS}|{day}"
    return day_key if bucket is None else f"{day_key}|{bucket:02d}"


def null_paths(partition: int, day: str, bucket: int) -> str:
    """``P|null|DAY|B``."""
    return f"{partition}|{NULL_PATHS}|{day}|{bucket:02d}"


def markov_state(partition: int, state: str) -> str:
    """``P|markov|STATE``."""
    return f"{partition}|{MARKOV}|{state}"


def tick(partition: int) -> str:
    """``P|tick``."""
    return f"{partition}|{TICK}"


def offsets(partition: int) -> str:
    """``P|offsets``."""
    return f"{partition}|{OFFSETS}"


def costs(partition: int) -> str:
    """``P|costs``."""
    return f"{partition}|{COSTS}"


def funnel(partition: int) -> str:
    """``P|funnel``."""
    return f"{partition}|{FUNNEL}"


def rates(partition: int) -> str:
    """``P|rates``."""
    return f"{partition}|{RATES}"


def is_bookkeeping(key: str) -> bool:
    """``P|tick`` or ``P|offsets``: the worker's own clocks, which no answer's numbers read.

    Every expiry tick rewrites them, so a data version that counted them would change every
    few seconds on an idle stream (stream.api.shares.local_version).
    """
    kind = key.partition("|")[2].partition("|")[0]
    return kind in (TICK, OFFSETS)


def partition_of(key: str) -> int:
    """The partition a key belongs to (its changelog partition too)."""
    return int(key.partition("|")[0])


def parse(key: str) -> tuple[int, str, str]:
    """(partition, kind, what follows the kind: a day, a Markov state, or ``""``)."""
    head, _, rest = key.partition("|")
    kind, _, tail = rest.partition("|")
    return int(head), kind, tail


def without_partition(key: str) -> str:
    """The key after its ``P|`` prefix (how a worker's share names an item)."""
    return key.partition("|")[2]
