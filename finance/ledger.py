"""The ledger's vocabulary and arithmetic: entry kinds, what each kind does to spend, totals and margin.

Every amount is integer nano-USD. An entry's ``amount`` is positive and its kind says the direction; only
``adjustment`` may be negative (a correction to spend: a refund or credit lowers it, a late charge raises it).

    kind            counted as                       written by
    model_cost      spend                            the request log (one row per request, ``cost_nano``)
    tool_spend      spend                            ``POST /v1/spend`` (an agent's paid tool or API call)
    payment_spend   spend                            outbound payments (x402 / MPP)
    adjustment      spend (signed)                   an administrator's correction
    revenue         income                           paid endpoints
    cache_savings   neither: the cost a cache hit avoided, reported beside spend

    total_spend = model_cost + tool_spend + payment_spend + adjustments
    margin      = revenue - total_spend

Without adjustments this is the issue's "revenue − (model + tool + payment spend)"; adjustments join spend
because a correction that never reached the margin would correct nothing.

Aggregation is exact by construction (integer sums, no division), so totals over any number of entries equal
the sum of the entries to the nano-dollar; ``aggregate`` folds the database's per-(group, kind) sums into
``Totals`` and is the same code a property test drives with 10^5 entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Literal, get_args

from .money import Nano

__all__ = [
    "BUDGET_KINDS",
    "GROUPS",
    "KINDS",
    "LEDGER_KINDS",
    "Group",
    "Kind",
    "Totals",
    "aggregate",
    "combine",
]

Kind = Literal["model_cost", "tool_spend", "payment_spend", "revenue", "cache_savings", "adjustment"]
KINDS: tuple[Kind, ...] = get_args(Kind)
LEDGER_KINDS: tuple[Kind, ...] = tuple(kind for kind in KINDS if kind != "model_cost")  # ledger_entries rows
BUDGET_KINDS: frozenset[Kind] = frozenset({"model_cost", "tool_spend", "payment_spend", "adjustment"})

# What a summary can be grouped by; None is the whole workspace in one row.
Group = Literal[
    "agent", "run", "session", "model", "provider", "department", "key", "day", "endpoint", "vendor", "tool"
]
GROUPS: tuple[Group, ...] = get_args(Group)


@dataclasses.dataclass(slots=True)
class Totals:
    """One summary row: the sum of each kind, the number of requests and ledger entries behind it."""

    model_cost: Nano = 0
    tool_spend: Nano = 0
    payment_spend: Nano = 0
    revenue: Nano = 0
    cache_savings: Nano = 0
    adjustments: Nano = 0
    requests: int = 0  # request-log rows (model calls, failed ones included: they cost 0)
    entries: int = 0  # ledger entries

    def add(self, kind: Kind, amount: Nano, count: int = 1) -> None:
        if kind == "model_cost":
            self.model_cost += amount
            self.requests += count
            return
        self.entries += count
        if kind == "tool_spend":
            self.tool_spend += amount
        elif kind == "payment_spend":
            self.payment_spend += amount
        elif kind == "revenue":
            self.revenue += amount
        elif kind == "cache_savings":
            self.cache_savings += amount
        else:
            self.adjustments += amount

    @property
    def total_spend(self) -> Nano:
        return self.model_cost + self.tool_spend + self.payment_spend + self.adjustments

    @property
    def margin(self) -> Nano:
        return self.revenue - self.total_spend

    def amounts(self) -> dict[str, Nano]:
        """Every amount of the row by name, derived ones included (for reports)."""
        return {
            "model_cost": self.model_cost,
            "tool_spend": self.tool_spend,
            "payment_spend": self.payment_spend,
            "revenue": self.revenue,
            "cache_savings": self.cache_savings,
            "adjustments": self.adjustments,
            "total_spend": self.total_spend,
            "margin": self.margin,
        }


def aggregate(rows: Iterable[tuple[str | None, Kind, Nano, int]]) -> dict[str | None, Totals]:
    """Fold ``(group key, kind, amount, count)`` rows — single entries or partial sums alike — into totals."""
    totals: dict[str | None, Totals] = {}
    for key, kind, amount, count in rows:
        row = totals.get(key)
        if row is None:
            row = totals[key] = Totals()
        row.add(kind, amount, count)
    return totals


def combine(rows: Iterable[Totals]) -> Totals:
    """The sum of several rows (a report's total line)."""
    total = Totals()
    for row in rows:
        for field in dataclasses.fields(Totals):
            setattr(total, field.name, getattr(total, field.name) + getattr(row, field.name))
    return total
