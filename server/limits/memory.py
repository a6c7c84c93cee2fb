"""The in-process limits backend: dicts in one process, for the embedded single-worker gateway.

Each method is atomic because it never awaits: on one event loop no other request runs in between. Its
counters are this process's alone, which is why ``alephant serve`` refuses several workers with it (each would
enforce the whole limit on its own share of the traffic). Budgets are seeded from the store like Redis's, so a
restart keeps the period's spend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .types import Admission, BudgetCharge, BudgetCounter, Outcome

__all__ = ["MemoryBackend"]


@dataclasses.dataclass(slots=True)
class _Budget:
    spent: int
    reserved: int = 0
    holds: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)  # ticket -> (amount, expiry ms)

    def expire(self, now_ms: int) -> None:
        for ticket in [t for t, (_, expiry) in self.holds.items() if expiry <= now_ms]:
            self.reserved -= self.holds.pop(ticket)[0]


@dataclasses.dataclass(slots=True)
class _Window:
    count: int
    ends_ms: int


class MemoryBackend:
    def __init__(self) -> None:
        self._budgets: dict[str, _Budget] = {}
        self._windows: dict[str, _Window] = {}
        self._leases: dict[str, dict[str, int]] = {}  # key -> ticket -> expiry ms

    async def admit(self, admission: Admission, *, now_ms: int, lease_ttl_ms: int) -> Outcome:
        budgets = [self._budgets.get(charge.key) for charge in admission.budgets]
        missing = tuple(index for index, budget in enumerate(budgets) if budget is None)
        if missing:
            return Outcome(missing=missing)
        for index, (charge, budget) in enumerate(zip(admission.budgets, budgets, strict=True)):
            assert budget is not None
            budget.expire(now_ms)
            if charge.rule.mode == "hard" and budget.spent + budget.reserved + charge.amount > charge.rule.limit_nano:
                return Outcome(refused=("budget", index), detail=(budget.spent, budget.reserved))
        for index, rate in enumerate(admission.rates):
            window = self._live_window(rate.key, now_ms)
            if window is not None and window.count > 0 and window.count + rate.cost > rate.rule.limit:
                return Outcome(refused=("rate", index), detail=(window.count, window.ends_ms - now_ms))
        for index, lease in enumerate(admission.leases):
            held = self._live_leases(lease.key, now_ms)
            if len(held) >= lease.rule.limit:
                return Outcome(refused=("concurrency", index), detail=(len(held), 0))
        counters = []
        for charge, budget in zip(admission.budgets, budgets, strict=True):
            assert budget is not None
            budget.reserved += charge.amount
            budget.holds[admission.ticket] = (charge.amount, now_ms + lease_ttl_ms)
            counters.append(BudgetCounter(budget.spent, budget.reserved))
        rates = []
        for rate in admission.rates:
            window = self._live_window(rate.key, now_ms)
            if window is None:
                window = self._windows[rate.key] = _Window(0, now_ms + rate.window_ms)
            window.count += rate.cost
            rates.append((window.count, window.ends_ms - now_ms))
        for lease in admission.leases:
            self._leases.setdefault(lease.key, {})[admission.ticket] = now_ms + lease_ttl_ms
        return Outcome(budgets=tuple(counters), rates=tuple(rates))

    async def commit(self, admission: Admission, *, actual_nano: int, actual_tokens: int, now_ms: int) -> None:
        self.commit_now(admission, actual_nano=actual_nano, actual_tokens=actual_tokens, now_ms=now_ms)

    def commit_now(self, admission: Admission, *, actual_nano: int, actual_tokens: int, now_ms: int) -> bool:
        for charge in admission.budgets:
            budget = self._budgets.get(charge.key)
            if budget is None:
                continue
            hold = budget.holds.pop(admission.ticket, None)
            if hold is not None:
                budget.reserved -= hold[0]
            budget.spent += actual_nano
        for rate in admission.rates:
            if rate.rule.kind != "tpm":
                continue
            window = self._live_window(rate.key, now_ms)
            if window is not None:
                window.count = max(0, window.count + actual_tokens - rate.cost)
        for lease in admission.leases:
            self._leases.get(lease.key, {}).pop(admission.ticket, None)
        return True

    async def renew(self, admissions: Sequence[Admission], *, now_ms: int, lease_ttl_ms: int) -> None:
        expiry = now_ms + lease_ttl_ms
        for admission in admissions:
            for charge in admission.budgets:
                budget = self._budgets.get(charge.key)
                if budget is not None and admission.ticket in budget.holds:
                    budget.holds[admission.ticket] = (budget.holds[admission.ticket][0], expiry)
            for lease in admission.leases:
                held = self._leases.get(lease.key, {})
                if admission.ticket in held:
                    held[admission.ticket] = expiry

    async def peek(self, budgets: Sequence[BudgetCharge], *, now_ms: int) -> tuple[list[BudgetCounter], list[int]]:
        counters, missing = [], []
        for index, charge in enumerate(budgets):
            budget = self._budgets.get(charge.key)
            if budget is None:
                missing.append(index)
                counters.append(BudgetCounter(0, 0))
                continue
            budget.expire(now_ms)
            counters.append(BudgetCounter(budget.spent, budget.reserved))
        return counters, missing

    async def spend(self, budgets: Sequence[BudgetCharge], *, now_ms: int) -> list[int]:
        missing = [index for index, charge in enumerate(budgets) if charge.key not in self._budgets]
        if missing:
            return missing
        for charge in budgets:
            self._budgets[charge.key].spent += charge.amount
        return []

    async def seed(self, key: str, spent: int, *, ttl_seconds: int) -> None:
        # Windows are named by their start, so an old window's counter is never read again; the dict holds one
        # entry per budget, scope value and window, dropped with the process.
        self._budgets.setdefault(key, _Budget(spent))

    async def aclose(self) -> None:
        return None

    def _live_window(self, key: str, now_ms: int) -> _Window | None:
        window = self._windows.get(key)
        if window is not None and window.ends_ms <= now_ms:
            del self._windows[key]
            return None
        return window

    def _live_leases(self, key: str, now_ms: int) -> dict[str, int]:
        held = self._leases.setdefault(key, {})
        for ticket in [t for t, expiry in held.items() if expiry <= now_ms]:
            del held[ticket]
        return held
