"""Small helpers shared by the analytics modules: exact money, safe ratios, periods."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from attribution.events import MS_PER_DAY

MICROS = 1_000_000
Granularity = Literal["day", "month", "all"]
ALL_TIME = "all"
# The business time zone of day and month buckets by default (``business.time_zone``).
UTC_ZONE = "UTC"


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone; a ValueError that says so otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"time zone {name!r} is not an IANA time zone (e.g. UTC, Europe/Paris)"
        ) from None
    return name


def to_micros(amount: float) -> int:
    """Money as integer millionths, so sums are exact and independent of event order."""
    return round(amount * MICROS)


def from_micros(micros: int) -> float:
    """Integer millionths back to a float amount."""
    return micros / MICROS


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; None when undefined (zero denominator, or not finite)."""
    if denominator == 0:
        return None
    value = numerator / denominator
    return value if math.isfinite(value) else None


def day_of(ts_ms: int, time_zone: str = UTC_ZONE) -> int:
    """Calendar day number (days since 1970-01-01) of an epoch-ms time in ``time_zone``."""
    if time_zone == UTC_ZONE:
        return ts_ms // MS_PER_DAY
    from zoneinfo import ZoneInfo

    offset = datetime.fromtimestamp(ts_ms / 1000, tz=ZoneInfo(time_zone)).utcoffset()
    assert offset is not None
    return (ts_ms + int(offset.total_seconds() * 1000)) // MS_PER_DAY


def period_key(ts_ms: int, granularity: Granularity, time_zone: str = UTC_ZONE) -> str:
    """Label of the period holding ``ts_ms`` in ``time_zone``: YYYY-MM-DD, YYYY-MM, or ``all``."""
    if granularity == "all":
        return ALL_TIME
    zone: Any = UTC
    if time_zone != UTC_ZONE:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(time_zone)
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=zone)
    if granularity == "day":
        return moment.strftime("%Y-%m-%d")
    if granularity == "month":
        return moment.strftime("%Y-%m")
    raise ValueError(f"granularity {granularity!r} must be one of: day, month, all")


def day_to_period(day: int, granularity: Granularity) -> str:
    """Label of the UTC period holding day number ``day``."""
    return period_key(day * MS_PER_DAY, granularity)


def exact_group_sums(groups: NDArray[np.int64], values: NDArray[np.float64]) -> Any:
    """Correctly rounded sum (as ``math.fsum``) of ``values`` per run of equal ``groups``.

    ``groups`` is sorted, so each group is a contiguous run. A group of one value is that value;
    only longer groups are summed in Python, one ``math.fsum`` each.
    """
    n = len(groups)
    if n == 0:
        return np.zeros(0)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    sizes = np.diff(np.r_[starts, n])
    sums = values[starts].astype(np.float64)
    for index in np.flatnonzero(sizes > 1).tolist():
        start = int(starts[index])
        sums[index] = math.fsum(values[start : start + int(sizes[index])].tolist())
    return sums


def distinct(values: NDArray[np.int64]) -> NDArray[np.int64]:
    """Sorted distinct values of an integer array.

    By sorting: numpy 2's ``np.unique`` without ``return_*`` takes a hashing path that is
    ten times slower on millions of values.
    """
    if values.size == 0:
        return values
    ordered = np.sort(values)
    keep = np.empty(len(ordered), np.bool_)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
