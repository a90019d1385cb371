"""A minimal Faust app for the Kafka smoke test: sum amounts per key into a table.

Configured from the environment so that every test run has its own app id and topic.
"""

from __future__ import annotations

import os
from typing import Any

import faust
from faust.web import Request, Response, View

APP_ID = os.environ["SMOKE_APP_ID"]
PARTITIONS = int(os.environ["SMOKE_PARTITIONS"])

app = faust.App(
    APP_ID,
    broker=f"kafka://{os.environ['SMOKE_BOOTSTRAP']}",
    store="memory://",
    datadir=os.environ["SMOKE_DATA_DIR"],
    topic_partitions=PARTITIONS,
    topic_replication_factor=1,
    table_standby_replicas=0,
    web_host="127.0.0.1",
    # One serializer for message keys and table keys: JSON strings on both sides.
    key_serializer="json",
    value_serializer="json",
)

amounts = app.topic(os.environ["SMOKE_TOPIC"], key_type=str)
totals = app.Table("totals", default=int, partitions=PARTITIONS)
counts = app.Table("counts", default=int, partitions=PARTITIONS)


@app.agent(amounts)
async def add_amounts(stream: Any) -> None:
    """Keep a running sum and count of each key's amounts."""
    async for key, value in stream.items():
        totals[key] += int(value["amount"])
        counts[key] += 1


@app.page("/totals/")
async def totals_view(self: View, request: Request) -> Response:
    """The tables as JSON: {"totals": {key: sum}, "counts": {key: n}}."""
    return self.json({"totals": dict(totals.items()), "counts": dict(counts.items())})
