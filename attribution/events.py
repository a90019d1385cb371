"""Event models shared by the stream and the batch engine.

Every external record goes through :func:`parse_event`, so both engines accept and
reject exactly the same records for exactly the same reasons.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from attribution.limits import MAX_TEXT, record_limits

MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_ms(ts: datetime) -> int:
    # Integer arithmetic: float seconds would round differently for far dates.
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class InvalidRecord(ValueError):
    """A record that cannot become an event; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_timestamp(value: Any) -> datetime:
    """Return an aware UTC datetime from ISO 8601 with offset or epoch milliseconds."""
    try:
        return _parse_timestamp(value)
    except OverflowError:
        raise ValueError(f"timestamp {value!r} is out of range") from None


def _parse_timestamp(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError("timestamp must be ISO 8601 with an offset or epoch milliseconds")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("timestamp must be a finite number of epoch milliseconds")
        return _EPOCH + timedelta(milliseconds=value)
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return _EPOCH + timedelta(milliseconds=int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"timestamp {value!r} is not ISO 8601 nor epoch milliseconds"
            ) from None
    else:
        raise ValueError("timestamp must be ISO 8601 with an offset or epoch milliseconds")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(
            f"timestamp {value!r} has no UTC offset; add one (e.g. +00:00 or Z) "
            "so that the event time is unambiguous"
        )
    return parsed.astimezone(UTC)


# What parse_timestamp accepts, for producers' JSON Schema (pydantic alone would say date-time).
_ISO_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}(:?[0-9]{2}(:?[0-9]{2}([.,][0-9]+)?)?)?)?"
    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
)
_TIMESTAMP_SCHEMA = {
    "description": "event time: ISO 8601 with a UTC offset (2026-01-05T10:00:00Z), or epoch "
    "milliseconds as an integer or a string of digits",
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": _ISO_PATTERN},
        {"type": "string", "pattern": "^-?[0-9]+$"},
        {"type": "number"},
    ],
}
Timestamp = Annotated[datetime, WithJsonSchema(_TIMESTAMP_SCHEMA)]
_AMOUNT_SCHEMA = {"minimum": 0, "description": "a finite, non-negative amount of money"}

_NonEmpty = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
_Text = Annotated[str, Field(max_length=MAX_TEXT)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    event_id: _NonEmpty
    ts: Timestamp

    @field_validator("ts", mode="before")
    @classmethod
    def _aware_ts(cls, value: Any) -> datetime:
        moment = parse_timestamp(value)
        limits = record_limits()
        if not limits.min_ts_ms <= _to_ms(moment) <= limits.max_ts_ms:
            raise ValueError(
                f"timestamp {value!r} is outside the accepted range {limits.time_range_text()} "
                "(validation.min_time, validation.max_time)"
            )
        return moment

    @cached_property
    def ts_ms(self) -> int:
        """Event time in epoch milliseconds (the engine's internal clock)."""
        return _to_ms(self.ts)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict with the timestamp as ISO 8601 UTC."""
        data = self.model_dump(mode="json", exclude_none=True)
        return data


def _check_amount(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("amount must be a finite number")
    if value < 0:
        raise ValueError("amount must not be negative")
    limit = record_limits().max_amount
    if value > limit:
        raise ValueError(f"amount must be at most {limit:,.0f} (validation.max_amount)")
    return value


class Touchpoint(_Event):
    """A customer met a channel (send, delivered, open, click, visit, lead...)."""

    type: Literal["touchpoint"] = "touchpoint"
    customer_id: _NonEmpty
    channel: _NonEmpty
    campaign: _Text | None = None
    interaction: _Text | None = None


class Purchase(_Event):
    """An order; it closes the customer's journey."""

    type: Literal["purchase"] = "purchase"
    customer_id: _NonEmpty
    order_id: _NonEmpty
    amount: Annotated[float, Field(json_schema_extra=_AMOUNT_SCHEMA)]
    currency: _Text | None = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: float) -> float:
        return _check_amount(value)


class Cost(_Event):
    """Money spent on a campaign in a channel."""

    type: Literal["cost"] = "cost"
    campaign: _NonEmpty
    channel: _NonEmpty
    amount: Annotated[float, Field(json_schema_extra=_AMOUNT_SCHEMA)]
    currency: _Text | None = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: float) -> float:
        return _check_amount(value)


class Assignment(_Event):
    """Puts a customer in the treatment or the control (holdout) group."""

    type: Literal["assignment"] = "assignment"
    customer_id: _NonEmpty
    group: Literal["treatment", "control"]
    campaign: _Text | None = None


class Refund(_Event):
    """Money given back on an order (a return, a cancellation): it lowers the order's value.

    The order must be a purchase of the same customer in the log; without ``currency`` the
    refund is in the order's currency (attribution/money.py).
    """

    type: Literal["refund"] = "refund"
    customer_id: _NonEmpty
    order_id: _NonEmpty
    amount: Annotated[float, Field(json_schema_extra=_AMOUNT_SCHEMA)]
    currency: _Text | None = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: float) -> float:
        return _check_amount(value)


class Rate(_Event):
    """An exchange rate: from ``ts`` on, one ``currency`` is worth ``rate`` base currency."""

    type: Literal["rate"] = "rate"
    currency: _NonEmpty
    rate: Annotated[
        float,
        Field(
            json_schema_extra={
                "exclusiveMinimum": 0,
                "description": "units of the base currency one unit of currency is worth",
            }
        ),
    ]

    @field_validator("rate")
    @classmethod
    def _rate(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError("rate must be a finite number greater than 0")
        return value


AnyEvent = Touchpoint | Purchase | Cost | Assignment
"""The events of journeys and customer analytics."""
MoneyEvent = Refund | Rate
"""Events that change what amounts are worth: refunds of orders, exchange rates."""
AnyRecord = AnyEvent | MoneyEvent
Event = Annotated[AnyRecord, Field(discriminator="type")]
EVENT_TYPES = ("touchpoint", "purchase", "cost", "assignment", "refund", "rate")
_MODEL_OF_TYPE: dict[str, type[_Event]] = {
    "touchpoint": Touchpoint,
    "purchase": Purchase,
    "cost": Cost,
    "assignment": Assignment,
    "refund": Refund,
    "rate": Rate,
}
_EVENT_ADAPTER: TypeAdapter[AnyRecord] = TypeAdapter(Event)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"] if p not in EVENT_TYPES)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            parts.append(f"missing field '{where}'")
        elif where:
            parts.append(f"field '{where}': {message}")
        else:
            parts.append(message)
    return "; ".join(parts)


def parse_record(raw: Any) -> AnyRecord:
    """Validate one decoded record of any type; raise :class:`InvalidRecord` with the reason.

    The batch readers' contract: every record of a log goes through here (or through the
    vectorised checks that give the same answer, attribution/io/fast_validation.py).
    """
    if not isinstance(raw, dict):
        raise InvalidRecord(f"expected a JSON object, got {type(raw).__name__}")
    kind = raw.get("type")
    if kind is None:
        raise InvalidRecord(f"missing field 'type' (one of {', '.join(EVENT_TYPES)})")
    if kind not in EVENT_TYPES:
        raise InvalidRecord(
            f"unknown event type {kind!r} (expected one of {', '.join(EVENT_TYPES)})"
        )
    try:
        return _EVENT_ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise InvalidRecord(_describe(error)) from None


def parse_event(raw: Any) -> AnyEvent:
    """:func:`parse_record`, for a consumer of customer and cost events only.

    Refunds and rates are valid records, but such a consumer cannot apply them: it gets an
    :class:`InvalidRecord` saying so (the stream dead-letters it) rather than an event it
    would drop or misread.
    """
    record = parse_record(raw)
    if isinstance(record, Refund | Rate):
        raise InvalidRecord(
            f"{record.type} events are applied by the batch engine (attribute, report); this "
            "consumer takes touchpoint, purchase, cost and assignment events"
        )
    return record


def _decoded(payload: bytes | str | None) -> Any:
    if payload is None:
        raise InvalidRecord("empty message (no value)")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidRecord(f"not valid JSON: {error}") from None


# The types of nearly every message of a stream, validated by their model directly.
_FAST_MODELS: dict[str, type[AnyEvent]] = {
    "touchpoint": Touchpoint,
    "purchase": Purchase,
    "cost": Cost,
    "assignment": Assignment,
}
# orjson reads an integer beyond 64 bits as a float (json: an int); no valid time is that large.
_LARGEST_EXACT = float(2**63)


def fast_record(payload: bytes | str | None) -> AnyEvent | None:
    """The record of a valid customer or cost event message, by a shorter way (orjson, then
    the event type's model): the same object :func:`parse_record_bytes` makes of it.

    ``None`` for anything else (not JSON orjson reads as :mod:`json` does, not an object,
    another type, invalid): the validating path then gives the verdict and the reason, so a
    dead letter says exactly what it said before.
    """
    if payload is None:
        return None
    try:
        raw = orjson.loads(payload)
    except orjson.JSONDecodeError:  # also NaN, Infinity, a BOM, a lone surrogate: json's call
        return None
    if type(raw) is not dict:
        return None
    kind = raw.get("type")
    model = _FAST_MODELS.get(kind) if type(kind) is str else None
    amount = raw.get("amount")
    if model is None or (type(amount) is float and not -_LARGEST_EXACT < amount < _LARGEST_EXACT):
        return None
    try:
        # What the discriminated union does once it has read the tag, without the union.
        return model.model_validate(raw)
    except ValidationError:
        return None


def parse_event_bytes(payload: bytes | str | None) -> AnyEvent:
    """Decode a JSON message (a Kafka value) and validate it (:func:`parse_event`)."""
    event = fast_record(payload)
    return parse_event(_decoded(payload)) if event is None else event


def parse_record_bytes(payload: bytes | str | None) -> AnyRecord:
    """Decode a JSON message and validate it as a record of any type (:func:`parse_record`)."""
    record = fast_record(payload)
    return parse_record(_decoded(payload)) if record is None else record


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_json_schema(kind: str | None = None) -> dict[str, Any]:
    """JSON Schema (2020-12) of one event type, or of any event (``kind`` None), from the models.

    What a schema cannot say is in the descriptions: strings are stripped of surrounding
    white space before their length is checked, and any other field is ignored.
    """
    if kind is not None and kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r} (expected one of {', '.join(EVENT_TYPES)})")
    adapter = _EVENT_ADAPTER if kind is None else TypeAdapter(_MODEL_OF_TYPE[kind])
    schema = adapter.json_schema()
    for model in schema.get("$defs", {None: schema}).values():
        properties = model.get("properties", {})
        if "type" in properties:
            # The models default ``type`` for Python callers; a record must carry it.
            properties["type"].pop("default", None)
            model["required"] = ["type", *model.get("required", [])]
    schema["$schema"] = JSON_SCHEMA_DIALECT
    if kind is None:
        schema["title"] = "crm-attribution event"
        schema["description"] = (
            "One record of an event log or Kafka message; the type field says which. Text "
            "fields are stripped of surrounding white space; fields not listed are ignored."
        )
    return schema
