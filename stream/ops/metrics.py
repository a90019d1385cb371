"""Prometheus metrics of a worker (one registry per pipeline, so tests can run several)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class WorkerMetrics:
    """The metrics ops watch: input, dead letters, latency, lag, state size, Markov, rebalances."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events_in = Counter(
            "crm_events_in_total", "Records read, per input topic", ["topic"], registry=r
        )
        self.dead_lettered = Counter(
            "crm_dead_lettered_total",
            "Records sent to the dead-letter topic",
            ["topic"],
            registry=r,
        )
        self.offsets_refilled = Counter(
            "crm_offsets_refilled_total",
            "Input records read directly because the consumer skipped or never recorded them",
            ["topic"],
            registry=r,
        )
        self.rfm_segment_customers = Gauge(
            "crm_rfm_segment_customers",
            "Customers per RFM segment at the last analytics report",
            ["segment"],
            registry=r,
        )
        self.holdout_incremental_revenue = Gauge(
            "crm_holdout_incremental_revenue",
            "Incremental revenue of the treated group over the holdout, last analytics report",
            registry=r,
        )
        self.total_revenue = Gauge(
            "crm_total_revenue", "Revenue of all purchases, last analytics report", registry=r
        )
        self.crm_revenue_share = Gauge(
            "crm_channels_revenue_share",
            "Share of total revenue credited to the CRM channels, per model",
            ["model"],
            registry=r,
        )
        self.processing_latency = Histogram(
            "crm_processing_latency_seconds",
            "Time from the start of a record's batch to its table writes sent (once per record)",
            registry=r,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )
        self.purchase_to_table = Histogram(
            "crm_purchase_to_table_seconds",
            "From the purchase message's broker timestamp to its credits in the tables",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.consumer_lag = Gauge(
            "crm_consumer_lag",
            "Messages behind the end of each partition",
            ["topic", "partition"],
            registry=r,
        )
        self.journeys_held = Gauge(
            "crm_open_journeys", "Customers with an open journey held by this worker", registry=r
        )
        self.held_journeys = Gauge(
            "crm_customers_with_held_journeys",
            "Customers whose closed journeys wait for a lagging input topic before crediting",
            registry=r,
        )
        self.customers_held = Gauge(
            "crm_customers_held", "Customer states held by this worker", registry=r
        )
        self.markov_refresh = Histogram(
            "crm_markov_refresh_seconds", "Time to solve the Markov model", registry=r
        )
        self.full_gc = Histogram(
            "crm_full_gc_seconds",
            "Time of the worker's timed full garbage collections (worker.full_gc_seconds)",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.journey_changes = Counter(
            "crm_journey_changes_total",
            "Journeys credited (emitted) or un-credited (retracted: a late event changed them)",
            ["change"],
            registry=r,
        )
        self.customers_decoded = Counter(
            "crm_customer_records_decoded_total",
            "Customer records decoded: a customer's first touch in a batch (or after a tick in it)",
            registry=r,
        )
        self.journeys_rebuilt = Counter(
            "crm_journey_rebuilds_total",
            "Customers whose journeys a batch rebuilt (new events, expiry, or held ones released)",
            registry=r,
        )
        self.rebalances = Counter("crm_rebalances_total", "Rebalances seen", registry=r)
        self.too_late = Counter(
            "crm_too_late_total", "Events older than the retained horizon", registry=r
        )

    def publish_analytics(self, answer: Mapping[str, Any]) -> None:
        """Set the headline analytics gauges from a fresh ``/analytics`` answer."""
        for segment, count in (answer.get("rfm", {}).get("segments") or {}).items():
            self.rfm_segment_customers.labels(segment).set(count)
        overall = (answer.get("holdout") or {}).get("overall") or {}
        if overall.get("incremental_revenue") is not None:
            self.holdout_incremental_revenue.set(overall["incremental_revenue"])
        share = answer.get("revenue_share") or {}
        if share.get("total_revenue") is not None:
            self.total_revenue.set(share["total_revenue"])
        for model, value in (share.get("crm_share") or {}).items():
            if value is not None:
                self.crm_revenue_share.labels(model).set(value)

    def render(self) -> bytes:
        """Text exposition format."""
        return generate_latest(self.registry)
