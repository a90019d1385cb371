"""Cold `/analytics` without a broker: building the shares and the report at a customer count.

    python bench/bench_analytics_cold.py [--customers 3000] [--days 180] [--copies 20]
                                         [--rounds 3] [--profile FILE] [--state DIR]

One generated log (seed 3) is drained through the stream's batch runner (``stream.testing``,
4 partitions, the worker's own code); its tables are kept in ``--state`` (reused when present:
the drain is the slow part). The customers' table entries are then copied ``--copies`` times
under renamed customer ids (their converted journeys too), so 3,000 customers x 20 copies are a
60,000-customer share without draining a 2-million-event log. Timed, ``--rounds`` times, what
a cold ``/analytics`` runs once the fan-out has gathered the shares: ``partition_shares`` (a
worker's share of its tables) and ``report_from_shares`` (the report); process CPU seconds
and wall seconds of each. With ``--profile`` one more round runs under cProfile, its stats
written to FILE (``python -m pstats FILE``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import orjson  # noqa: E402

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from stream.api.merge_analytics import report_from_shares  # noqa: E402
from stream.ops.gc_tuning import tune_collector  # noqa: E402
from stream.processing import aggregate_keys  # noqa: E402
from stream.processing.analytics_shares import partition_shares  # noqa: E402
from stream.processing.context import Context  # noqa: E402
from stream.testing import TestingLog, run_main, stored_partition  # noqa: E402
from tests.stream.batch_answers import stream_settings  # noqa: E402

PARTITIONS = 4


def drained(customers: int, days: int, state: Path) -> tuple[dict[bytes, Any], dict[str, Any]]:
    """The stream's tables after draining the generated log (from ``state`` when kept)."""
    path = state / f"tables_{customers}c_{days}d_s3_p{PARTITIONS}.pickle"
    if path.exists():
        tables: tuple[dict[bytes, Any], dict[str, Any]] = pickle.loads(path.read_bytes())
        return tables
    settings = stream_settings(partitions=PARTITIONS)
    lines = list(generate(GeneratorConfig(customers=customers, days=days, seed=3)))
    started = time.monotonic()
    log = TestingLog(settings)
    log.produce_lines(lines, settings)
    run = run_main(log, settings)
    print(f"drained {len(lines):,} records in {time.monotonic() - started:.0f} s", flush=True)
    state.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps((run.customers, run.aggregates)))
    return run.customers, run.aggregates


def _renamed_conv(value: Any, suffix: str) -> Any:
    """A ``P|conv`` value whose journeys belong to the renamed customers."""
    try:
        from stream.processing import journey_blocks
    except ImportError:  # a tree before journey blocks (2026-12-06): dicts of JSON text
        out = {}
        for event_id, item in value.items():
            customer, row = orjson.loads(item) if isinstance(item, str) else item
            out[f"{event_id}{suffix}"] = orjson.dumps([f"{customer}{suffix}", row]).decode()
        return out
    # A copy's block is under its own key: the journey ids may stay (as the rows' ids did).
    rows = journey_blocks.decode(value)
    return journey_blocks.encode({j: [f"{c}{suffix}", row] for j, (c, row) in rows.items()})


def copied(
    customers: dict[bytes, Any], aggregates: dict[str, Any], copies: int
) -> tuple[dict[bytes, Any], dict[str, Any]]:
    """The tables with every customer (and converted journey) ``copies`` times, renamed."""
    if copies == 1:
        return customers, aggregates
    many_customers: dict[bytes, Any] = {}
    many_aggregates: dict[str, Any] = {}
    for copy in range(copies):
        suffix = f"~{copy}"
        for key, value in customers.items():
            many_customers[key + suffix.encode()] = value
        for key, value in aggregates.items():
            kind = aggregate_keys.parse(key)[1]
            if kind == aggregate_keys.CONVERSIONS:
                many_aggregates[f"{key}{suffix}"] = _renamed_conv(value, suffix)
            elif kind == getattr(aggregate_keys, "FUNNEL", None):  # absent before P|funnel
                # The copies' parts are the same: each count (and the customers counted) times.
                many_aggregates[key] = {
                    "n": value["n"] * copies,
                    "counts": {
                        c: {k: n * copies for k, n in names.items()}
                        for c, names in value["counts"].items()
                    },
                }
            else:
                many_aggregates[key] = value
    return many_customers, many_aggregates


def cold_answer(
    customers: dict[bytes, Any], aggregates: dict[str, Any], settings: Any, merged: Any
) -> tuple[dict[str, float], dict[str, Any]]:
    """CPU and wall seconds of the shares and of the report, and the report."""
    times: dict[str, float] = {}
    cpu, wall = time.process_time(), time.perf_counter()
    shares = partition_shares(
        customers.items(), aggregates.items(), set(range(PARTITIONS)), stored_partition
    )
    times["shares_cpu"], times["shares_wall"] = (
        time.process_time() - cpu,
        time.perf_counter() - wall,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    ctx = Context.from_settings(settings, {})
    report = report_from_shares(shares, merged, settings, ctx.models, ctx.options)
    times["report_cpu"], times["report_wall"] = (
        time.process_time() - cpu,
        time.perf_counter() - wall,
    )
    # What the shares weigh as JSON: what a worker sends another over HTTP.
    times["shares_json_mb"] = len(orjson.dumps(shares)) / 1e6
    return times, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile")
    parser.add_argument("--state", default=str(REPO / "bench" / "out" / "analytics_cold"))
    parser.add_argument("--answer", help="write the report's JSON here (to compare runs)")
    args = parser.parse_args()
    customers, aggregates = drained(args.customers, args.days, Path(args.state))
    customers, aggregates = copied(customers, aggregates, args.copies)
    settings = stream_settings(partitions=PARTITIONS)
    from stream.processing.aggregates import items_by_partition, merge_partitions

    merged = merge_partitions(items_by_partition(aggregates.items(), set(range(PARTITIONS))))
    print(f"{len(customers):,} customers ({args.customers:,} x {args.copies})", flush=True)
    # The worker's collector settings: no full collection counted up to by a big heap.
    tune_collector()
    gc.collect()
    report: dict[str, Any] = {}
    rounds = []
    for number in range(1, args.rounds + 1):
        times, report = cold_answer(customers, aggregates, settings, merged)
        rounds.append(times)
        print(
            f"round {number}: shares {times['shares_cpu']:.2f} s CPU "
            f"({times['shares_wall']:.2f} s wall), report {times['report_cpu']:.2f} s CPU "
            f"({times['report_wall']:.2f} s wall), shares {times['shares_json_mb']:.1f} MB "
            "as JSON",
            flush=True,
        )
    if args.answer:
        Path(args.answer).write_bytes(orjson.dumps(report, option=orjson.OPT_SORT_KEYS))
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        cold_answer(customers, aggregates, settings, merged)
        profiler.disable()
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}", flush=True)
    print(json.dumps({"customers": len(customers), "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
