"""The limits stage: budgets reserved, rate windows counted and concurrency leased before the call; the actual
cost committed after it (a stream when it ends, a disconnect included).

A call in a workspace without rules costs one dict lookup: no estimate, no backend call. Otherwise the stage
estimates the call's upper-bound cost (prompt tokens from the body size, plus ``max_tokens`` — or the model's
max output, capped by ``limits.default_max_output_tokens`` — at the model's output price), admits it through
the limiter in one backend call, and records each decision as a ``PolicyEvent``. The commit prices the call
once and leaves ``call.cost`` set, so the record stage does not price it again.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import cast

import anyio

from finance.budgets import upper_bound
from finance.money import format_usd
from finance.pricing import Cost, PriceBook
from providers.catalog import Catalog

from ..call import Call, PolicyEvent, Reply
from ..errors import BudgetExceeded, ConcurrencyLimited, GatewayError, RateLimited
from ..pipeline import Handler
from ..services import Services
from .alerts import SoftBudgetAlerts
from .limiter import Limiter, LimitsUnavailable, Scopes, budget_refusal
from .types import Admission, Outcome

__all__ = ["LimitsStage"]

_RATE_UNITS = {"rpm": "requests per minute", "tpm": "tokens per minute", "rpd": "requests per day"}


class LimitsStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.limiter: Limiter = services.limiter
        self.prices: PriceBook = services.prices
        self.catalog: Catalog = services.catalog
        self.settings = services.settings.limits
        self.alerts = SoftBudgetAlerts()

    async def __call__(self, call: Call) -> Reply:
        principal, target = call.principal, call.target
        assert principal is not None and target is not None
        rules = self.limiter.snapshot.rules(principal.workspace_id)
        if not rules.budgets and not rules.limits:
            return await self.next(call)
        prompt_tokens = len(call.raw) // self.settings.bytes_per_prompt_token + 1
        max_output = self._max_output(call)
        amount = upper_bound(self.prices, target.provider.id, target.model, prompt_tokens, max_output)
        scopes = Scopes.of(principal, call.context, target.qualified)
        admission = self.limiter.admission(scopes, amount=amount, tokens=prompt_tokens + max_output, now=_now())
        if admission.empty:
            return await self.next(call)
        try:
            outcome = await self.limiter.admit(admission)
        except LimitsUnavailable:
            raise GatewayError(
                "Limits are unavailable: the gateway cannot reach its limits backend (Redis), and "
                "limits.on_backend_error is 'closed'. Retry shortly; operators: check ALEPHANT_REDIS_URL.",
                status=503,
                code="limits_unavailable",
                headers={"retry-after": "1"},
            ) from None
        if outcome.refused is not None:
            raise _refusal(call, admission, outcome)
        headers = _decide(call, admission, outcome, self.alerts)
        try:
            reply = await self.next(call)
        except BaseException:
            with anyio.CancelScope(shield=True):  # a cancelled call still commits (see ``_watch``)
                await self._commit(call, admission)
            raise
        reply.headers.update(headers)
        if reply.stream is None:
            self.limiter.commit_soon(admission, **self._actual(call))  # the answer does not wait for it
        else:
            reply.stream = self._watch(call, admission, reply.stream)
        return reply

    def _max_output(self, call: Call) -> int:
        if call.endpoint != "chat":
            return 0
        body = call.body
        asked = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
        if isinstance(asked, int) and asked > 0:
            return asked
        assert call.target is not None
        info = self.catalog.model_info(call.target.provider.id, call.target.model)
        known = info.max_output_tokens if info is not None else None
        return min(known or self.settings.default_max_output_tokens, self.settings.default_max_output_tokens)

    async def _watch(self, call: Call, admission: Admission, stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield chunk
        finally:
            # A client disconnect cancels the relay inside a cancelled scope, which cancels every await here too:
            # unshielded, the reservation would stay until it expires and the call's spend would never count.
            with anyio.CancelScope(shield=True):
                # Close the inner stream first: on a disconnect it is what sets the usage relayed so far.
                await cast(AsyncGenerator[bytes, None], stream).aclose()
                await self._commit(call, admission, reprice=True)

    async def _commit(self, call: Call, admission: Admission, *, reprice: bool = False) -> None:
        """Commit the call's actual cost; ``reprice`` when an outer stage may have priced it before its usage
        was final (a disconnected stream is closed outside in, so the usage arrives after the record stage)."""
        await self.limiter.commit(admission, **self._actual(call, reprice=reprice))

    def _actual(self, call: Call, *, reprice: bool = False) -> dict[str, int]:
        """The call's actual cost and tokens; prices it (and sets ``call.cost``) unless already priced."""
        target, usage = call.target, call.usage
        cost = call.cost
        if target is not None and (cost is None or reprice):
            workspace_id = call.principal.workspace_id if call.principal is not None else None
            cost = self.prices.cost(target.provider.id, target.model, usage, workspace_id)
            if call.cost is None:
                call.cost = cost
        return {
            "actual_nano": (cost or Cost(0, None)).nano,
            "actual_tokens": usage.prompt_tokens + usage.completion_tokens,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _decide(call: Call, admission: Admission, outcome: Outcome, alerts: SoftBudgetAlerts) -> dict[str, str]:
    """Policy events for an admitted call (a soft budget's first crossing per window also logged), and the
    ``x-ratelimit-*`` headers of its tightest rate limit."""
    for charge, counter in zip(admission.budgets, outcome.budgets, strict=False):
        limit = charge.rule.limit_nano
        if charge.rule.mode == "soft" and counter.spent + counter.reserved > limit:
            alerts.crossed(charge, counter)
            call.policy_events.append(
                PolicyEvent(
                    "alert",
                    charge.rule_name,
                    f"soft budget {format_usd(limit)} USD crossed: {format_usd(counter.spent)} spent, "
                    f"{format_usd(counter.reserved)} reserved",
                )
            )
        else:
            call.policy_events.append(
                PolicyEvent("allow", charge.rule_name, f"reserved {format_usd(charge.amount)} USD")
            )
    headers: dict[str, str] = {}
    tightest: tuple[int, int, int] | None = None  # remaining, limit, ms to reset
    for rate, (count, reset_ms) in zip(admission.rates, outcome.rates, strict=False):
        left = max(0, rate.rule.limit - count)
        call.policy_events.append(
            PolicyEvent("allow", f"limit:{rate.rule.kind}:{rate.rule.scope}:{rate.scope_value}", f"{left} left")
        )
        if tightest is None or left < tightest[0]:
            tightest = (left, rate.rule.limit, reset_ms)
    for lease in admission.leases:
        call.policy_events.append(
            PolicyEvent("allow", f"limit:concurrency:{lease.rule.scope}:{lease.scope_value}", "slot leased")
        )
    if tightest is not None:
        headers = _rate_headers(tightest[1], tightest[0], tightest[2])
    return headers


def _rate_headers(limit: int, left: int, reset_ms: int) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(left),
        "x-ratelimit-reset": str(max(1, math.ceil(reset_ms / 1000))),
    }


def _refusal(call: Call, admission: Admission, outcome: Outcome) -> GatewayError:
    assert outcome.refused is not None
    kind, index = outcome.refused
    if kind == "budget":
        charge = admission.budgets[index]
        spent, reserved = outcome.detail
        message = budget_refusal(charge, spent, reserved)
        call.policy_events.append(PolicyEvent("deny", charge.rule_name, message))
        return BudgetExceeded(message)
    if kind == "rate":
        rate = admission.rates[index]
        count, reset_ms = outcome.detail
        retry = max(1, math.ceil(reset_ms / 1000))
        message = (
            f"Rate limit reached: {rate.rule.limit} {_RATE_UNITS[rate.rule.kind]} for {rate.rule.scope} "
            f"'{rate.scope_value}' ({count} used in this window). Retry after {retry} s."
        )
        rule_name = f"limit:{rate.rule.kind}:{rate.rule.scope}:{rate.scope_value}"
        call.policy_events.append(PolicyEvent("deny", rule_name, message))
        return RateLimited(message, headers={"retry-after": str(retry), **_rate_headers(rate.rule.limit, 0, reset_ms)})
    lease = admission.leases[index]
    message = (
        f"Concurrency limit reached: {lease.rule.limit} calls already in flight for {lease.rule.scope} "
        f"'{lease.scope_value}'. Retry when one of them finishes."
    )
    call.policy_events.append(PolicyEvent("deny", f"limit:concurrency:{lease.rule.scope}:{lease.scope_value}", message))
    return ConcurrencyLimited(message, headers={"retry-after": "1"})
