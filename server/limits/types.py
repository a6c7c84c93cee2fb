"""The limits vocabulary: stored rules, the counters one call charges, and what a backend answers.

A *rule* is a definition from the store (a budget or a rate/concurrency limit). A *charge* is that rule applied
to one call: the backend counter it touches (named by a key that includes the scope value and, for budgets
and rate windows, the period), and how much it adds. An ``Admission`` is every charge of one call, checked and
taken atomically by a backend; a ``Ticket`` is what the commit needs to undo the reservation and add the
actual cost.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Literal

from finance.budgets import Period, Window

__all__ = [
    "BUDGET_SCOPES",
    "LIMIT_KINDS",
    "LIMIT_SCOPES",
    "Admission",
    "BudgetCharge",
    "BudgetCounter",
    "BudgetRule",
    "BudgetScope",
    "LeaseCharge",
    "LimitKind",
    "LimitRule",
    "LimitScope",
    "Outcome",
    "RateCharge",
    "Ticket",
]

BudgetScope = Literal["workspace", "department", "key", "agent", "run"]
BUDGET_SCOPES: tuple[BudgetScope, ...] = ("workspace", "department", "key", "agent", "run")
LimitScope = Literal["workspace", "key", "agent", "model"]
LIMIT_SCOPES: tuple[LimitScope, ...] = ("workspace", "key", "agent", "model")
LimitKind = Literal["rpm", "tpm", "rpd", "concurrency"]
LIMIT_KINDS: tuple[LimitKind, ...] = ("rpm", "tpm", "rpd", "concurrency")
Mode = Literal["hard", "soft"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BudgetRule:
    """A budget: at most ``limit_nano`` per ``period`` for one scope (``scope_id`` None: each value of it)."""

    id: str
    workspace_id: str
    scope: BudgetScope
    scope_id: str | None
    period: Period
    limit_nano: int
    mode: Mode
    time_zone: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LimitRule:
    """A rate (rpm, tpm, rpd) or concurrency limit for one scope (``scope_id`` None: each value of it)."""

    id: str
    workspace_id: str
    scope: LimitScope
    scope_id: str | None
    kind: LimitKind
    limit: int
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class BudgetCharge:
    """One budget counter a call reserves against: the rule, the scope value it applies to, the window."""

    rule: BudgetRule
    scope_value: str
    window: Window
    key: str  # the counter's name: rule id, scope value, window start
    amount: int  # nano-USD reserved (or spent, for ``add_spend``)

    @property
    def rule_name(self) -> str:
        return f"budget:{self.rule.scope}:{self.scope_value}:{self.rule.period}"


@dataclasses.dataclass(frozen=True, slots=True)
class RateCharge:
    rule: LimitRule
    scope_value: str
    key: str
    window_ms: int  # the window starts at the first counted request and lasts this long
    cost: int  # 1 request, or the estimated tokens for tpm


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseCharge:
    rule: LimitRule
    scope_value: str
    key: str


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """Every counter one call charges; ``ticket`` names its reservations and leases."""

    ticket: str
    budgets: tuple[BudgetCharge, ...] = ()
    rates: tuple[RateCharge, ...] = ()
    leases: tuple[LeaseCharge, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.budgets or self.rates or self.leases)


@dataclasses.dataclass(frozen=True, slots=True)
class BudgetCounter:
    """A budget window's committed spend and outstanding reservations, in nano-USD."""

    spent: int
    reserved: int


@dataclasses.dataclass(slots=True)
class Outcome:
    """A backend's answer to an admission.

    ``missing``: budget counters (indexes into ``Admission.budgets``) that do not exist yet and must be seeded
    from the store before the admission is retried; nothing was taken. ``refused``: ``("budget"|"rate"|
    "concurrency", index)`` with ``detail``; nothing was taken. Otherwise everything was taken: ``budgets``
    holds each budget's counter after the reservation, ``rates`` each rate window's (count after, milliseconds
    until it resets).
    """

    missing: tuple[int, ...] = ()
    refused: tuple[str, int] | None = None
    detail: tuple[int, int] = (0, 0)  # refused budget: (spent, reserved); rate: (count, ms to reset); lease: (held, 0)
    budgets: tuple[BudgetCounter, ...] = ()
    rates: tuple[tuple[int, int], ...] = ()


@dataclasses.dataclass(slots=True)
class Ticket:
    """An admitted call's reservations and leases, to commit (or renew while it runs)."""

    admission: Admission
    committed: bool = False
