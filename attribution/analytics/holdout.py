"""Holdout membership and the mergeable state behind incremental revenue.

Membership comes either from assignment events (per customer and experiment, the latest by
event time, ties broken by the larger event_id; the experiment is the assignment's campaign,
``None`` for the overall holdout) or, in hash mode, from ``sha256(f"{salt}:{customer_id}")``
for the overall holdout only. A customer's purchases count for an experiment from the time of
the assignment that decides their membership (in hash mode: all of them).

Per customer the state is small (assignments, purchases); across customers only sums are
kept: per (experiment, group) the member count, and per period the revenue sum, the sum of
squared per-customer revenue and the number of buyers. Money is in integer micro-units, so
partitions merge by plain addition and any event order gives identical sums.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import polars as pl

from attribution.analytics._common import ALL_TIME, UTC_ZONE, Granularity, period_key, to_micros
from attribution.events import AnyEvent, Assignment, Cost, Purchase, Rate

Group = Literal["treatment", "control"]
GROUPS: tuple[Group, Group] = ("treatment", "control")
DEFAULT_CONTROL_SHARE = 0.05


def hash_group(customer_id: str, salt: str, control_share: float = DEFAULT_CONTROL_SHARE) -> Group:
    """Deterministic group of a customer: control when sha256(salt:id) falls below the share."""
    if not 0.0 <= control_share <= 1.0:
        raise ValueError(f"holdout control_share {control_share} must be between 0 and 1")
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    # The first 8 bytes as a fraction of 2**64: uniform in [0, 1), same in every process.
    position = int.from_bytes(digest[:8], "big") / 2**64
    return "control" if position < control_share else "treatment"


@dataclass(frozen=True)
class HashMembership:
    """Hash-based overall holdout: no assignment events needed."""

    salt: str
    control_share: float = DEFAULT_CONTROL_SHARE


class _Assigned(NamedTuple):
    ts_ms: int
    event_id: str
    group: Group


class Member(NamedTuple):
    """A customer's membership in one experiment, counted from ``since_ms``."""

    group: Group
    since_ms: int | None


@dataclass
class CustomerHoldout:
    """One customer's assignments and purchases (the per-customer, partitioned state)."""

    assignments: dict[str | None, _Assigned] = field(default_factory=dict)
    purchases: dict[str, tuple[int, int]] = field(default_factory=dict)  # event_id -> ts, micros
    seen: bool = False

    def apply(self, event: AnyEvent) -> None:
        """Update with one event of this customer (latest assignment wins; purchases by id)."""
        self.seen = True
        if isinstance(event, Assignment):
            new = _Assigned(event.ts_ms, event.event_id, event.group)
            old = self.assignments.get(event.campaign)
            if old is None or old[:2] < new[:2]:
                self.assignments[event.campaign] = new
        elif isinstance(event, Purchase):
            record = (event.ts_ms, to_micros(event.amount))
            known = self.purchases.get(event.event_id)
            if known is None or record < known:
                self.purchases[event.event_id] = record

    def members(self, customer_id: str, hashing: HashMembership | None) -> dict[str | None, Member]:
        """Experiments this customer belongs to, with group and counting start."""
        if hashing is not None:
            if not self.seen:
                return {}
            return {
                None: Member(hash_group(customer_id, hashing.salt, hashing.control_share), None)
            }
        return {exp: Member(a.group, a.ts_ms) for exp, a in self.assignments.items()}

    def to_json(self) -> dict[str, Any]:
        """JSON object (experiments as a list, since the overall one has no name)."""
        return {
            "assignments": [[exp, *a] for exp, a in self.assignments.items()],
            "purchases": {k: list(v) for k, v in sorted(self.purchases.items())},
            "seen": self.seen,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CustomerHoldout:
        """Inverse of :meth:`to_json`."""
        return cls(
            {
                exp: _Assigned(int(ts), str(eid), group)
                for exp, ts, eid, group in data["assignments"]
            },
            {k: (int(v[0]), int(v[1])) for k, v in data["purchases"].items()},
            bool(data["seen"]),
        )


@dataclass
class Moments:
    """Per-period sums over the customers of one (experiment, group)."""

    revenue: int = 0  # micro-units
    revenue_sq: int = 0  # squared micro-units, per customer
    buyers: int = 0

    def add(self, other: Moments, sign: int = 1) -> None:
        """Add (or with sign -1, remove) another set of sums."""
        self.revenue += sign * other.revenue
        self.revenue_sq += sign * other.revenue_sq
        self.buyers += sign * other.buyers


@dataclass
class GroupState:
    """Members of one (experiment, group) and their per-period sums."""

    members: int = 0
    periods: dict[str, Moments] = field(default_factory=dict)


ExperimentKey = tuple[str | None, Group]


@dataclass
class HoldoutAggregate:
    """Additive sums per (experiment, group): what the stream merges across partitions."""

    groups: dict[ExperimentKey, GroupState] = field(default_factory=dict)

    def add(self, contribution: dict[ExperimentKey, dict[str, Moments]], sign: int = 1) -> None:
        """Add (sign 1) or remove (sign -1) one customer's contribution."""
        for key, periods in contribution.items():
            state = self.groups.setdefault(key, GroupState())
            state.members += sign
            for period, moments in periods.items():
                state.periods.setdefault(period, Moments()).add(moments, sign)

    def merge(self, other: HoldoutAggregate) -> None:
        """Add another partition's sums."""
        for key, state in other.groups.items():
            mine = self.groups.setdefault(key, GroupState())
            mine.members += state.members
            for period, moments in state.periods.items():
                mine.periods.setdefault(period, Moments()).add(moments)

    def experiments(self) -> list[str | None]:
        """Experiments present, the overall one (None) first."""
        names = {exp for exp, _ in self.groups}
        return sorted(names, key=lambda e: (e is not None, e or ""))

    def to_json(self) -> dict[str, Any]:
        """JSON list of [experiment, group, members, {period: [revenue, revenue_sq, buyers]}]."""
        return {
            "groups": [
                [
                    exp,
                    group,
                    s.members,
                    {p: [m.revenue, m.revenue_sq, m.buyers] for p, m in sorted(s.periods.items())},
                ]
                for (exp, group), s in self.groups.items()
            ]
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HoldoutAggregate:
        """Inverse of :meth:`to_json`."""
        out = cls()
        for exp, group, members, periods in data["groups"]:
            out.groups[(exp, group)] = GroupState(
                int(members),
                {p: Moments(int(a), int(b), int(c)) for p, (a, b, c) in periods.items()},
            )
        return out


@dataclass
class HoldoutTracker:
    """Customer states plus their aggregate, updated together one event at a time."""

    granularity: Granularity = "month"
    hashing: HashMembership | None = None
    customers: dict[str, CustomerHoldout] = field(default_factory=dict)
    aggregate: HoldoutAggregate = field(default_factory=HoldoutAggregate)
    time_zone: str = UTC_ZONE  # of the period buckets (business.time_zone)

    def contribution(self, customer_id: str) -> dict[ExperimentKey, dict[str, Moments]]:
        """What one customer adds to the aggregate: per experiment, per period, their sums."""
        state = self.customers.get(customer_id)
        if state is None:
            return {}
        out: dict[ExperimentKey, dict[str, Moments]] = {}
        for experiment, member in state.members(customer_id, self.hashing).items():
            revenue: dict[str, int] = {}
            for ts_ms, micros in state.purchases.values():
                if member.since_ms is not None and ts_ms < member.since_ms:
                    continue
                for period in {ALL_TIME, period_key(ts_ms, self.granularity, self.time_zone)}:
                    revenue[period] = revenue.get(period, 0) + micros
            out[(experiment, member.group)] = {
                period: Moments(value, value * value, 1) for period, value in revenue.items()
            }
        return out

    def apply(self, event: AnyEvent) -> None:
        """Fold one event: swap the customer's old contribution for the new one."""
        if isinstance(event, Cost | Rate):
            return
        customer = event.customer_id
        self.aggregate.add(self.contribution(customer), sign=-1)
        self.customers.setdefault(customer, CustomerHoldout()).apply(event)
        self.aggregate.add(self.contribution(customer))

    def apply_all(self, events: Iterable[AnyEvent]) -> HoldoutTracker:
        """Fold every event (batch use); returns self."""
        for event in events:
            self.apply(event)
        return self

    def __iter__(self) -> Iterator[tuple[str, CustomerHoldout]]:
        return iter(sorted(self.customers.items()))


def aggregate_of_tables(
    assignments: pl.DataFrame,
    seen: pl.Series,
    purchases: pl.DataFrame,
    granularity: Granularity,
    hashing: HashMembership | None,
    time_zone: str = "UTC",
) -> HoldoutAggregate:
    """The sums of every customer's contribution, by group-by over the holdout tables.

    ``assignments`` (customer_id, experiment, group, ts_ms) are the deciding assignments,
    ``seen`` the customers with any event, ``purchases`` (customer_id, ts_ms, micros) the
    holdout's purchases. Equal to adding :meth:`HoldoutTracker.contribution` of each customer.
    """
    from attribution.analytics.inputs import period_labels

    if hashing is not None:
        customers = seen.to_list()
        groups = [hash_group(c, hashing.salt, hashing.control_share) for c in customers]
        members = pl.DataFrame(
            {
                "customer_id": pl.Series(customers, dtype=pl.String),
                "experiment": pl.Series([None] * len(customers), dtype=pl.String),
                "group": pl.Series(groups, dtype=pl.String),
                "since": pl.Series([None] * len(customers), dtype=pl.Int64),
            }  # fmt: skip
        )
    else:
        members = assignments.select("customer_id", "experiment", "group", since="ts_ms")
    out = HoldoutAggregate()
    for experiment, group, n in members.group_by("experiment", "group").len().iter_rows():
        out.groups[(experiment, group)] = GroupState(int(n))
    counted = members.join(purchases, on="customer_id", how="inner").filter(
        pl.col("since").is_null() | (pl.col("ts_ms") >= pl.col("since"))
    )
    labels = [pl.lit(ALL_TIME).alias("period")]
    if granularity != "all":
        labels.append(period_labels(pl.col("ts_ms"), granularity, time_zone).alias("period"))
    per_customer = pl.concat(
        [
            counted.select("customer_id", "experiment", "group", "micros", label)
            .group_by("experiment", "group", "period", "customer_id")
            .agg(pl.col("micros").sum())
            for label in labels
        ]
    )
    for (experiment, group, period), rows in per_customer.group_by("experiment", "group", "period"):
        # Squares in Python integers: a customer's squared revenue overflows 64 bits.
        values = [int(v) for v in rows["micros"].to_list()]
        state = out.groups.setdefault((experiment, group), GroupState())
        state.periods[str(period)] = Moments(sum(values), sum(v * v for v in values), len(values))
    return out
