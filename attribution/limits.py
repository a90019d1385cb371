"""Bounds every record must keep: what a producer cannot get past the validator.

A value outside them is an invalid record with a reason that names the bound and its setting
(``[validation]`` in config/defaults.toml), in the batch report as in the stream's dead-letter
topic: a purchase of 1e308 would otherwise be summed, and a 900 KB campaign name kept in the
tables. Text fields are at most 256 characters whatever the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

MAX_TEXT = 256
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True)
class RecordLimits:
    """Largest amount, and the range of event times, that a record may have."""

    max_amount: float = 1e12
    min_ts_ms: int = 0  # 1970-01-01T00:00:00Z
    max_ts_ms: int = _ms(datetime(2100, 1, 1, tzinfo=UTC))

    @classmethod
    def from_settings(cls, validation: object) -> RecordLimits:
        """Limits from the ``[validation]`` settings (max_amount, min_time, max_time)."""
        from attribution.events import parse_timestamp

        return cls(
            float(getattr(validation, "max_amount")),  # noqa: B009
            _ms(parse_timestamp(getattr(validation, "min_time"))),  # noqa: B009
            _ms(parse_timestamp(getattr(validation, "max_time"))),  # noqa: B009
        )

    def time_range_text(self) -> str:
        """The accepted event times, as people read them."""
        low = datetime.fromtimestamp(self.min_ts_ms / 1000, tz=UTC).isoformat()
        high = datetime.fromtimestamp(self.max_ts_ms / 1000, tz=UTC).isoformat()
        return f"{low.replace('+00:00', 'Z')} to {high.replace('+00:00', 'Z')}"


_current = RecordLimits()


def record_limits() -> RecordLimits:
    """The limits in force in this process."""
    return _current


def set_record_limits(limits: RecordLimits) -> None:
    """Put limits in force (commands do it once from the settings, before reading records)."""
    global _current
    _current = limits
