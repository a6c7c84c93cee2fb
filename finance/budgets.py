"""Budget arithmetic: calendar periods in a time zone, the upper bound a call reserves, and what still fits.

Pure functions over integer nano-USD and aware datetimes, so the limits backends (in-process and Redis) and
the admin API agree on one definition. A budget's window is a calendar period in the budget's own time zone:
a "daily" budget in ``Europe/Paris`` resets at Paris midnight, whatever the server's zone, and a day with a
DST change is 23 or 25 hours long. Weeks start on Monday (ISO 8601). ``total`` never resets.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from providers.types import Usage

from .money import Nano

if TYPE_CHECKING:  # the price data loads with it: the CLI's --help reads PERIODS without it
    from .pricing import PriceBook

__all__ = ["PERIODS", "Period", "Window", "WindowCache", "fits", "remaining", "upper_bound", "window"]

Period = Literal["hourly", "daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = ("hourly", "daily", "weekly", "monthly", "total")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Window:
    """One period of a budget: ``[start, end)`` in UTC; ``end`` is None for a ``total`` budget."""

    start: datetime
    end: datetime | None

    @property
    def id(self) -> int:
        """The start as epoch seconds: names the window's counter."""
        return int(self.start.timestamp())


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    return datetime(year, month, day, tzinfo=zone).astimezone(UTC)


def window(period: Period, time_zone: str, now: datetime) -> Window:
    """The window of ``period`` in ``time_zone`` that contains ``now`` (an aware datetime)."""
    if period == "total":
        return Window(_EPOCH, None)
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    if period == "hourly":
        # Local hour boundaries: a +05:30 zone's hours start at :30 UTC. The UTC step is exact across DST.
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return Window(start, start + timedelta(hours=1))
    day = local.date()
    if period == "daily":
        following = day + timedelta(days=1)
        return Window(
            _local_midnight(day.year, day.month, day.day, zone),
            _local_midnight(following.year, following.month, following.day, zone),
        )
    if period == "weekly":
        monday = day - timedelta(days=day.weekday())
        next_monday = monday + timedelta(days=7)
        return Window(
            _local_midnight(monday.year, monday.month, monday.day, zone),
            _local_midnight(next_monday.year, next_monday.month, next_monday.day, zone),
        )
    next_year, next_month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return Window(_local_midnight(day.year, day.month, 1, zone), _local_midnight(next_year, next_month, 1, zone))


class WindowCache:
    """``window``, computed once per period and time zone until that window ends.

    Every governed call with a budget asks for its window; the time zone arithmetic costs ~5 µs a rule, and the
    answer changes once an hour at most. A ``now`` outside the cached window (later, or earlier: clocks step
    back) computes it afresh.
    """

    def __init__(self) -> None:
        self._current: dict[tuple[Period, str], Window] = {}

    def __call__(self, period: Period, time_zone: str, now: datetime) -> Window:
        found = self._current.get((period, time_zone))
        if found is None or now < found.start or (found.end is not None and now >= found.end):
            found = self._current[(period, time_zone)] = window(period, time_zone, now)
        return found


def upper_bound(prices: PriceBook, provider_id: str, model: str, prompt_tokens: int, max_output_tokens: int) -> Nano:
    """The most a call can cost: its estimated prompt plus every output token it may produce, at list price.

    Cached-input discounts are ignored on purpose: the bound must never be below what the call is billed.
    """
    return prices.cost(provider_id, model, Usage(prompt_tokens=prompt_tokens, completion_tokens=max_output_tokens)).nano


def fits(limit: Nano, spent: Nano, reserved: Nano, amount: Nano) -> bool:
    """Whether ``amount`` more can be reserved without the budget's spent plus reservations passing its limit."""
    return spent + reserved + amount <= limit


def remaining(limit: Nano, spent: Nano, reserved: Nano) -> Nano:
    """What is left to reserve, never negative (a soft budget may already be over)."""
    return max(0, limit - spent - reserved)
