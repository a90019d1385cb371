"""What processing one record (or one customer's clock) produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream.processing.customer_state import JourneyChange


@dataclass
class Outcome:
    """A dead letter, the attribution records credited, and the customer's journey changes."""

    dead_letter: dict[str, Any] | None = None
    attribution_records: list[dict[str, Any]] = field(default_factory=list)
    changes: list[JourneyChange] = field(default_factory=list)
    purchase: bool = False
    held: bool = False  # the purchase's journey waits for a lagging input topic
    too_late: bool = False
    customer_id: str | None = None  # set when a customer's state was updated
