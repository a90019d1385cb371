"""Money in the stream: rate events, amounts converted into the base currency, refunds.

The rules are the batch engine's (``attribution.money``), applied as records arrive:

* **Rates.** Every partition of the purchases and costs topics receives every ``rate`` event
  (the producer sends one copy to each, ``stream.topics.destinations``); each partition keeps
  them in ``P|rates`` in arrival order, after the rates file's. An amount is converted at the
  rate in force at its event time among those known when it arrives
  (``attribution.money.rate_in_force``); without one it is a dead letter with the batch's
  reason.
* **Refunds.** A refund comes on the purchases topic, keyed by its customer, after its order's
  purchases. It is checked against the customer's purchases and refunds so far
  (``stream.processing.analytics_parts.with_refund``); then each purchase of the order is worth
  its amount times ``1 - refunded / order amount``. The purchase's journey is retracted at its
  old value and emitted at the new one, wherever it is: still in the customer's state (its
  purchase row takes the new amount, so a later rebuild keeps it), or compacted away (it is
  read back from ``P|conv``). The customer analytics apply the refunds when a query reads
  the parts (``analytics_parts.net_of_refunds``, through ``analytics_columns.share_columns``).

So the stream equals the batch engine for a log whose rates arrive before the amounts they
convert, and whose refunds arrive after all their order's purchases: what ``crm-attribution
produce`` keeps when the file is in that order, since a rate travels with the purchases and
costs of every partition and a refund with its customer's purchases. A rate produced after an
amount it would have converted, or a refund before its order, is the stream's difference
(docs/stream.md, "Refunds and currencies").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any, TypeVar

from attribution.events import Cost, InvalidRecord, Purchase, Rate, Refund
from attribution.journeys import ConvertedJourney
from attribution.money import MoneySettings, missing_rate_problem, rate_in_force
from attribution.money import Rate as KnownRate
from stream.processing import aggregate_keys as keys
from stream.processing.analytics_parts import order_money, with_refund
from stream.processing.customer_state import CustomerState, JourneyChange

Amount = TypeVar("Amount", Purchase, Cost)
# A credited journey no longer in its customer's state: (purchase event id, time) -> it.
CreditedJourney = Callable[[str, int], ConvertedJourney | None]


class MoneyProblem(InvalidRecord):
    """An amount or refund the stream cannot apply; the reason is the batch's."""


def record_rate(aggregates: MutableMapping[str, Any], partition: int, rate: Rate) -> None:
    """Keep a rate event in ``P|rates`` (a repeat, by event id, changes nothing)."""
    key = keys.rates(partition)
    known = list(aggregates.get(key) or [])
    if any(item[0] == rate.event_id for item in known):
        return
    known.append([rate.event_id, rate.currency, rate.ts_ms, rate.rate])
    aggregates[key] = known


def known_rates(
    aggregates: Mapping[str, Any], partition: int, money: MoneySettings
) -> list[KnownRate]:
    """The rates file's rates, then the partition's rate events in arrival order."""
    events = aggregates.get(keys.rates(partition)) or []
    return [*money.rates, *(KnownRate(c, int(since), float(r)) for _, c, since, r in events)]


def converted(
    aggregates: Mapping[str, Any], partition: int, money: MoneySettings, event: Amount
) -> Amount:
    """The event with its amount in the base currency; :class:`MoneyProblem` without a rate."""
    code = event.currency
    if code is None or code == money.base_currency:
        return event
    rates = known_rates(aggregates, partition, money)
    rate = rate_in_force(rates, code, event.ts_ms)
    if rate is None:
        first = min((r.since_ms for r in rates if r.currency == code), default=None)
        raise MoneyProblem(missing_rate_problem(code, money.base_currency, event.ts_ms, first))
    # The batch's own product (attribution/money.py): the same float for the same log.
    return event.model_copy(update={"amount": event.amount * rate})


def apply_refund(
    state: CustomerState, refund: Refund, base_currency: str, credited: CreditedJourney
) -> list[JourneyChange]:
    """Take a refund on its order: the customer's parts, and its purchases' journeys revalued.

    ``credited`` finds a credited journey that compaction took out of the customer's state.
    Raises :class:`MoneyProblem` with the reason when the refund cannot apply.
    """
    parts, problem = with_refund(state.analytics, refund, base_currency)
    if problem is not None:
        raise MoneyProblem(problem)
    state.analytics = parts
    order = order_money(parts, refund.order_id, base_currency)
    assert order is not None  # with_refund found it
    changes: list[JourneyChange] = []
    for event_id, record in order.purchases.items():
        changes += _revalued(state, credited, event_id, record.ts_ms, order.net(record.amount))
    return changes


def _revalued(
    state: CustomerState,
    credited: CreditedJourney,
    event_id: str,
    ts_ms: int,
    value: float,
) -> list[JourneyChange]:
    """Set one purchase's value; the retraction and emission of its journey if it was credited."""
    for index, row in enumerate(state.events):
        if row.is_purchase and row.event_id == event_id:
            # A rebuild of the customer's journeys (a late touch) reads the amount from here.
            state.events[index] = row._replace(amount=value)
    for index, journey in enumerate(state.emitted):
        if isinstance(journey, ConvertedJourney) and journey.event_id == event_id:
            if journey.value == value:
                return []
            new = replace(journey, value=value)
            state.emitted[index] = new
            return [JourneyChange(-1, journey), JourneyChange(+1, new)]
    if any(row.is_purchase and row.event_id == event_id for row in state.events):
        return []  # held: emitted later, at the new value
    stored = credited(event_id, ts_ms)
    if stored is None or stored.value == value:
        return []
    return [JourneyChange(-1, stored), JourneyChange(+1, replace(stored, value=value))]
