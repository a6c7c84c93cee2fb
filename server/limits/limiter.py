"""The limiter service: which rules apply to a call, admission and commit through the backend, and the
programmatic budget API other surfaces use (the MCP ``check_budget`` tool, the ledger's ``POST /v1/spend``).

Admission steps:
  1. build the call's charges from the snapshot (no I/O): budgets workspace → department → key → agent → run in
     their current window, rate windows and concurrency leases per key / agent / model / workspace;
  2. one backend call takes them all or refuses;
  3. a budget counter the backend does not have yet is seeded from the store (``SpentSource``) once per window
     per process — concurrent requests wait on the same seeding — and the admission is retried;
  4. while the call runs, one background task renews every live admission of this process in one backend call
     every ``lease_ttl / 3`` seconds, so a process killed mid-call leaves entries that expire within the TTL.

Backend failures follow ``limits.on_backend_error``: ``closed`` (default) refuses the call with a 503, because a
budget that silently stops counting is an unbounded bill; ``open`` lets it through with an ``alert`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from finance.budgets import WindowCache, fits, remaining
from finance.money import format_usd

from ..call import AgentContext, Principal
from ..config import LimitsSettings
from ..storage import Database
from .backend import LimitBackend, counter_expiry
from .snapshot import LimitsSnapshot
from .spent import SpentSource, spent_from_ledger
from .types import (
    Admission,
    BudgetCharge,
    BudgetCounter,
    BudgetRule,
    LeaseCharge,
    Outcome,
    RateCharge,
)

__all__ = ["BudgetRefused", "BudgetStatus", "Limiter", "LimitsUnavailable", "Scopes", "budget_refusal"]

_log = logging.getLogger("alephant.limits")
_WINDOW_MS = {"rpm": 60_000, "tpm": 60_000, "rpd": 86_400_000}


class LimitsUnavailable(Exception):
    """The backend could not be reached and ``on_backend_error`` is ``closed``."""


def budget_refusal(charge: BudgetCharge, spent: int, reserved: int) -> str:
    """Why a hard budget refused an amount: scope, limit, spent, reserved, the amount and when it resets."""
    rule = charge.rule
    resets = (
        f"It resets at {charge.window.end.isoformat()}."
        if charge.window.end is not None
        else "It is a total budget and does not reset; raise it or create a new one."
    )
    return (
        f"Budget exceeded: the {rule.period} {rule.scope} budget of '{charge.scope_value}' is "
        f"{format_usd(rule.limit_nano)} USD; {format_usd(spent)} USD is spent and {format_usd(reserved)} USD "
        f"reserved by calls in flight, and this call may cost up to {format_usd(charge.amount)} USD. {resets}"
    )


class BudgetRefused(Exception):
    """``Limiter.reserve`` could not fit the amount in a hard budget; the message says which and why."""

    def __init__(self, charge: BudgetCharge, spent: int, reserved: int) -> None:
        super().__init__(budget_refusal(charge, spent, reserved))
        self.charge = charge


@dataclasses.dataclass(frozen=True, slots=True)
class Scopes:
    """The scope values of one call; None where the call has none (no department, no agent, no run)."""

    workspace: str
    department: str | None
    key: str
    agent: str | None
    run: str | None
    model: str | None = None

    @classmethod
    def of(cls, principal: Principal, context: AgentContext, model: str | None = None) -> Scopes:
        return cls(
            workspace=principal.workspace_id,
            department=principal.department_id,
            key=principal.key_id,
            agent=principal.agent_id or context.agent_id,
            run=context.run_id,
            model=model,
        )

    def value(self, scope: str) -> str | None:
        value: str | None = getattr(self, scope)
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One applicable budget as ``check_budget`` reports it."""

    budget_id: str
    scope: str
    scope_value: str
    period: str
    mode: str
    limit_nano: int
    spent_nano: int
    reserved_nano: int
    remaining_nano: int
    resets_at: datetime | None
    fits: bool  # a call costing the estimate fits (soft budgets always "fit": they only alert)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Limiter:
    def __init__(
        self,
        *,
        snapshot: LimitsSnapshot,
        backend: LimitBackend,
        database: Database,
        settings: LimitsSettings,
        spent_source: SpentSource = spent_from_ledger,
    ) -> None:
        self.snapshot = snapshot
        self.backend = backend
        self.settings = settings
        self._database = database
        self._spent_source = spent_source
        self._lease_ttl_ms = int(settings.lease_ttl * 1000)
        self._live: dict[str, Admission] = {}
        self._window = WindowCache()
        self._seeding: dict[str, asyncio.Future[None]] = {}
        self._committing: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    # --- which counters a call charges ----------------------------------------------------------------------

    def budget_charges(self, scopes: Scopes, amount: int, now: datetime) -> tuple[BudgetCharge, ...]:
        charges = []
        for rule in self.snapshot.rules(scopes.workspace).budgets:
            value = scopes.value(rule.scope)
            if value is None or (rule.scope_id is not None and rule.scope_id != value):
                continue
            current = self._window(rule.period, rule.time_zone, now)
            charges.append(BudgetCharge(rule, value, current, f"b:{rule.id}:{value}:{current.id}", amount))
        return tuple(charges)

    def admission(self, scopes: Scopes, *, amount: int, tokens: int, now: datetime) -> Admission:
        """Every counter a call with this upper-bound cost and token estimate charges (maybe none)."""
        rates: list[RateCharge] = []
        leases: list[LeaseCharge] = []
        for rule in self.snapshot.rules(scopes.workspace).limits:
            value = scopes.value(rule.scope)
            if value is None or (rule.scope_id is not None and rule.scope_id != value):
                continue
            if rule.kind == "concurrency":
                leases.append(LeaseCharge(rule, value, f"c:{rule.id}:{value}"))
            else:
                cost = tokens if rule.kind == "tpm" else 1
                rates.append(RateCharge(rule, value, f"r:{rule.id}:{value}", _WINDOW_MS[rule.kind], cost))
        return Admission(
            ticket=os.urandom(9).hex(),
            budgets=self.budget_charges(scopes, amount, now),
            rates=tuple(rates),
            leases=tuple(leases),
        )

    # --- admission and commit -------------------------------------------------------------------------------

    async def admit(self, admission: Admission) -> Outcome:
        """Take every charge or none; raises ``LimitsUnavailable`` (closed) or returns an empty outcome (open)."""
        try:
            outcome = await self.backend.admit(admission, now_ms=_now_ms(), lease_ttl_ms=self._lease_ttl_ms)
            if outcome.missing:
                await self._seed([admission.budgets[index] for index in outcome.missing])
                outcome = await self.backend.admit(admission, now_ms=_now_ms(), lease_ttl_ms=self._lease_ttl_ms)
        except Exception as exc:
            return self._backend_failed(exc)
        if outcome.refused is None and not outcome.missing:
            self._live[admission.ticket] = admission
        return outcome

    async def commit(self, admission: Admission, *, actual_nano: int, actual_tokens: int) -> None:
        """Add the actual cost and release reservations and leases; a failure is logged (entries expire)."""
        if self._live.pop(admission.ticket, None) is None:
            return
        try:
            await self.backend.commit(admission, actual_nano=actual_nano, actual_tokens=actual_tokens, now_ms=_now_ms())
        except Exception as exc:
            _log.warning("limits commit failed (its reservations expire in %ss): %r", self.settings.lease_ttl, exc)

    def commit_soon(self, admission: Admission, *, actual_nano: int, actual_tokens: int) -> None:
        """``commit`` as a task: a finished call's answer does not wait for the backend's round trip.

        The commit only turns a reservation into the actual spend and releases leases; until it lands the
        reservation (an upper bound) still counts, so nothing is over-admitted meanwhile. Reads of the
        counters in this process (``usage``, ``check_budget``) and ``stop`` wait for the commits in flight.
        """
        if admission.ticket not in self._live:
            return
        if self.backend.commit_now(admission, actual_nano=actual_nano, actual_tokens=actual_tokens, now_ms=_now_ms()):
            del self._live[admission.ticket]
            return
        task = asyncio.get_running_loop().create_task(
            self.commit(admission, actual_nano=actual_nano, actual_tokens=actual_tokens)
        )
        self._committing.add(task)
        task.add_done_callback(self._committing.discard)

    async def settled(self) -> None:
        """Return once every commit started before the call has landed (or failed and been logged)."""
        if self._committing:
            await asyncio.wait(list(self._committing))

    def _backend_failed(self, exc: Exception) -> Outcome:
        _log.warning("limits backend unavailable: %r", exc)
        if self.settings.on_backend_error == "closed":
            raise LimitsUnavailable(type(exc).__name__) from exc
        return Outcome()

    async def _seed(self, charges: Sequence[BudgetCharge]) -> None:
        waits = []
        for charge in charges:
            pending = self._seeding.get(charge.key)
            if pending is None:
                pending = asyncio.get_running_loop().create_task(self._seed_one(charge))
                self._seeding[charge.key] = pending
            waits.append(pending)
        await asyncio.gather(*waits)

    async def _seed_one(self, charge: BudgetCharge) -> None:
        try:
            await self._read_and_seed(charge)
        finally:
            self._seeding.pop(charge.key, None)

    async def _read_and_seed(self, charge: BudgetCharge) -> None:
        spent = await self._spent_source(
            self._database,
            workspace_id=charge.rule.workspace_id,
            scope=charge.rule.scope,
            scope_value=charge.scope_value,
            start=charge.window.start,
            end=charge.window.end,
        )
        await self.backend.seed(charge.key, spent, ttl_seconds=counter_expiry(charge.window.end, _now_ms()))

    # --- the programmatic budget API ------------------------------------------------------------------------

    async def check_budget(self, principal: Principal, context: AgentContext, estimate_nano: int) -> list[BudgetStatus]:
        """Every budget that applies to this caller, what remains of it, and whether ``estimate_nano`` fits."""
        now = datetime.now(UTC)
        charges = self.budget_charges(Scopes.of(principal, context), estimate_nano, now)
        counters = await self._peek(charges)
        return [_status(charge, counter, estimate_nano) for charge, counter in zip(charges, counters, strict=True)]

    async def add_spend(self, principal: Principal, context: AgentContext, amount_nano: int) -> None:
        """Count spend that did not come through a model call (tool spend, payments) against every budget.

        It already happened, so it is never refused: a hard budget it pushes over refuses the next call.
        """
        charges = self.budget_charges(Scopes.of(principal, context), amount_nano, datetime.now(UTC))
        if not charges:
            return
        missing = await self.backend.spend(charges, now_ms=_now_ms())
        if missing:
            await self._seed([charges[index] for index in missing])
            await self.backend.spend(charges, now_ms=_now_ms())

    async def reserve(self, principal: Principal, context: AgentContext, amount_nano: int) -> Admission:
        """Hold ``amount_nano`` against every applicable budget until ``settle`` (a payment about to be signed:
        a signed authorization counts as spent until it settles or fails). Raises ``BudgetRefused`` when a hard
        budget cannot fit it, ``LimitsUnavailable`` when the backend is down and limits fail closed."""
        scopes = Scopes.of(principal, context)
        admission = Admission(
            ticket=os.urandom(9).hex(), budgets=self.budget_charges(scopes, amount_nano, datetime.now(UTC))
        )
        if admission.empty:
            return admission
        outcome = await self.admit(admission)
        if outcome.refused is not None:
            _, index = outcome.refused
            spent, reserved = outcome.detail
            raise BudgetRefused(admission.budgets[index], spent, reserved)
        return admission

    async def settle(self, admission: Admission, actual_nano: int) -> None:
        """End a ``reserve``: ``actual_nano`` is spent (0 when the payment did not settle), the hold released."""
        if not admission.empty:
            await self.commit(admission, actual_nano=actual_nano, actual_tokens=0)

    async def usage(self, rule: BudgetRule, scope_value: str) -> BudgetStatus:
        """A budget's current window for one scope value (the admin API's view)."""
        now = datetime.now(UTC)
        current = self._window(rule.period, rule.time_zone, now)
        charge = BudgetCharge(rule, scope_value, current, f"b:{rule.id}:{scope_value}:{current.id}", 0)
        (counter,) = await self._peek([charge])
        return _status(charge, counter, 0)

    async def _peek(self, charges: Sequence[BudgetCharge]) -> list[BudgetCounter]:
        if not charges:
            return []
        await self.settled()  # read-your-writes: this process's calls that finished are counted
        counters, missing = await self.backend.peek(charges, now_ms=_now_ms())
        if missing:
            await self._seed([charges[index] for index in missing])
            counters, _ = await self.backend.peek(charges, now_ms=_now_ms())
        return counters

    # --- lifetime: lease renewal ----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._renew(), name="alephant-limits-renew")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.settled()
        await self.backend.aclose()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_ttl / 3)
            live = list(self._live.values())
            if not live:
                continue
            try:
                await self.backend.renew(live, now_ms=_now_ms(), lease_ttl_ms=self._lease_ttl_ms)
            except Exception as exc:
                _log.warning("limits lease renewal failed: %r", exc)


def _status(charge: BudgetCharge, counter: BudgetCounter, estimate: int) -> BudgetStatus:
    rule = charge.rule
    return BudgetStatus(
        budget_id=rule.id,
        scope=rule.scope,
        scope_value=charge.scope_value,
        period=rule.period,
        mode=rule.mode,
        limit_nano=rule.limit_nano,
        spent_nano=counter.spent,
        reserved_nano=counter.reserved,
        remaining_nano=remaining(rule.limit_nano, counter.spent, counter.reserved),
        resets_at=charge.window.end,
        fits=rule.mode == "soft" or fits(rule.limit_nano, counter.spent, counter.reserved, estimate),
    )
