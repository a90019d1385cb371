"""Where a worker's memory per customer goes: the tables' Python objects after a broker-free run.

    python bench/bench_state_sizes.py [--customers 5000] [--days 180] [--rss] [--tracemalloc]

The generator's log (default profile, seed 3) runs through the batch runner
(:mod:`stream.testing`, dicts for tables, as the memory store holds them); then, per customer:
the customer records' bytes, each table entry's Python objects (key and value), and the
aggregates table by key kind (deep sizes). With ``--tracemalloc`` also the lines that allocated
what stays alive once the log and the run's outputs are dropped. With ``--rss`` also the tables'
resident memory: what loading them (pickled) adds to a fresh process's VmRSS, per customer.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from crm_attribution.generator import GeneratorConfig, generate  # noqa: E402
from crm_attribution.settings.typed import load_settings  # noqa: E402
from stream.processing import customer_record  # noqa: E402
from stream.testing import TestingLog, run_main  # noqa: E402


def deep_size(value: Any, seen: set[int] | None = None) -> int:
    """Bytes of a value and everything it holds (containers of str, bytes, numbers)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in value)
    return size


def key_kind(key: Any) -> str:
    """An aggregates key's kind, all partitions together: ``P|`` and its kind (``P|conv``)."""
    text = key.decode() if isinstance(key, bytes) else str(key)
    return "|".join(["P", *text.split("|")[1:2]])


def record_parts(customers: dict[bytes, Any], sample: int = 500) -> None:
    """What the dedupe ring and the analytics parts take of a record (first ``sample``)."""
    ids = rings = analytics = retained = 0
    picked = list(customers.items())[:sample]
    for key, value in picked:
        state = customer_record.decode(key.decode(), value)
        ids += len(state.compacted_ids)
        retained += len(state.events)
        rings += len(value) - len(customer_record.encode(replace(state, compacted_ids=[])))
        analytics += len(value) - len(customer_record.encode(replace(state, analytics=None)))
    n = len(picked)
    print(
        f"  of a record ({n} customers): {retained / n:.1f} retained events, dedupe ring "
        f"{ids / n:.1f} ids {rings / n:,.0f} bytes, analytics parts {analytics / n:,.0f} bytes"
    )


_LOAD_TABLES = """
import gc, pickle, sys
def rss():
    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) * 1024
with open(sys.argv[1], 'rb') as f:
    before = rss()
    tables = pickle.load(f)
gc.collect()
print(rss() - before)
"""


def tables_rss(tables: Any) -> int:
    """Bytes a fresh process's VmRSS grows by when it loads ``tables`` (pickled, then dropped)."""
    with tempfile.NamedTemporaryFile(suffix=".pickle") as file:
        pickle.dump(tables, file, protocol=pickle.HIGHEST_PROTOCOL)
        file.flush()
        out = subprocess.run(
            [sys.executable, "-c", _LOAD_TABLES, file.name], check=True, capture_output=True
        )
    return int(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--rss", action="store_true", help="the tables' resident memory too")
    args = parser.parse_args()
    settings = load_settings()
    lines = list(generate(GeneratorConfig(customers=args.customers, days=args.days, seed=3)))
    log = TestingLog(settings)
    log.produce_lines(lines, settings)
    del lines
    gc.collect()
    if args.tracemalloc:
        tracemalloc.start(1)
        before = tracemalloc.take_snapshot()
    started = time.process_time()
    run = run_main(log, settings)
    cpu = time.process_time() - started
    events = sum(len(r) for r in log.records.values()) if hasattr(log, "records") else None
    customers, aggregates = run.customers, run.aggregates
    run.results.clear()
    del log
    gc.collect()
    n = len(customers)
    record_bytes = sum(len(v) for v in customers.values())
    entry_bytes = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in customers.items())
    dict_bytes = sys.getsizeof(customers)
    print(f"{n:,} customers, CPU {cpu:.1f} s, events {events}")
    print(f"customer records: {record_bytes / n:,.0f} bytes each as bytes (len)")
    print(f"customer table entries (key + value objects): {entry_bytes / n:,.0f} bytes each")
    print(f"customer table dict itself: {dict_bytes / n:,.0f} bytes per customer")
    record_parts(customers)
    kinds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    seen: set[int] = set()
    for key, value in aggregates.items():
        kinds[key_kind(key)] += deep_size(key, seen) + deep_size(value, seen)
        counts[key_kind(key)] += 1
    total = sum(kinds.values()) + sys.getsizeof(aggregates)
    print(f"aggregates: {len(aggregates):,} keys, {total / n:,.0f} bytes per customer (deep)")
    for kind, size in kinds.most_common(12):
        print(f"  {kind:<28} {counts[kind]:>8,} keys {size / n:>10,.1f} bytes per customer")
    if args.rss:
        rss = tables_rss((customers, aggregates))
        print(
            f"tables RSS (customers + aggregates, loaded in a fresh process): {rss / n:,.0f} "
            "bytes per customer"
        )
    if args.tracemalloc:
        after = tracemalloc.take_snapshot()
        stats = after.compare_to(before, "lineno")
        grown = sum(s.size_diff for s in stats)
        print(f"tracemalloc: {grown / n:,.0f} bytes per customer still allocated; top lines:")
        for stat in stats[:15]:
            print(f"  {stat.size_diff / n:>9,.1f} B/customer  {stat.traceback}")


if __name__ == "__main__":
    main()
