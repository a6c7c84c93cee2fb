"""The attempt loop: retries, backoff, fallback by failure class and the deadline, around one send.

The dispatcher's ``send`` makes exactly one upstream attempt and raises ``AttemptError`` when it fails before
anything reached the client. This loop decides what happens next; the steps of one call:

1. Order the group's deployments with its strategy, keeping those the key's policy allows.
2. Take the first deployment in that order that was not tried in this round, whose circuit admits a call,
   that is under its in-flight limit and has a key that is not cooling down; send with that key.
3. On success, record the latency and return the reply (a stream counts as in flight until it ends).
4. On failure, classify it (``rate_limit``, ``server_error``, ``timeout``, ``unavailable``, ``context_window``,
   ``content_policy``, or none). A 429 cools that key down until the provider's reset; server errors, timeouts
   and connect errors count against the deployment's circuit. A 429 on a key pool with another free key
   retries the same deployment with that key at once.
5. ``context_window`` and ``content_policy`` go straight to their fallback group (a larger-context model, an
   alternate); other classes first try the rest of the group, then the fallback for their class (or
   ``default``). Failures of no class (a bad request) end the call.
6. When the group is exhausted and has no fallback, wait — exponential backoff with full jitter, or until the
   earliest cooldown or half-open time, whichever is longer — and go round the group again.
7. Stop at the attempt cap or the deadline (no attempt starts after it; each attempt's timeout is cut to the
   time left), and a wait longer than ``max_retry_wait_ms`` is not waited out: the last error is the answer.

Nothing is retried once a byte of an answer reached the client: ``send`` returns as soon as the upstream's
first chunk arrived, and from then on the stream belongs to the client.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from providers.types import ProviderSpec

from ..call import Call, Reply
from ..config import RetrySettings
from ..errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .health import Health
from .types import CIRCUIT_FAILURES, RETRYABLE, AttemptRecord, Deployment, Group, Plan

__all__ = ["AttemptError", "AttemptLoop", "Send", "backoff", "classify", "retry_after"]

Send = Callable[[Call, Deployment, ProviderSpec, float], Awaitable[Reply]]
"""One attempt: ``send(call, deployment, spec_with_key, timeout_seconds)``."""


class AttemptError(Exception):
    """One attempt failed before anything reached the client; the loop may try again."""

    def __init__(
        self, error: GatewayError, *, upstream_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.upstream_status = upstream_status
        self.retry_after = retry_after


_CONTEXT = re.compile(
    r"context[_ ]length|context[_ ]window|maximum context|prompt is too long|input is too long|too many tokens"
    r"|reduce the length|exceeds the maximum number of tokens|max_tokens_exceeded",
    re.IGNORECASE,
)
_CONTENT = re.compile(
    r"content[_ ]filter|content[_ ]policy|content management policy|safety system|responsible ai|"
    r"flagged|moderation",
    re.IGNORECASE,
)


def classify(error: GatewayError, upstream_status: int | None) -> str | None:
    """The failure class of a failed attempt, or None when another attempt would not help."""
    if isinstance(error, UpstreamTimeout) or upstream_status == 408:
        return "timeout"
    if isinstance(error, UpstreamUnavailable):
        return "unavailable"
    if upstream_status == 429:
        return "rate_limit"
    if upstream_status is not None and (upstream_status >= 500 or upstream_status == 409):
        return "server_error"
    if isinstance(error, UpstreamError) and upstream_status is not None and 400 <= upstream_status < 500:
        text = f"{error.code} {error.message}"
        if _CONTEXT.search(text):
            return "context_window"
        if _CONTENT.search(text):
            return "content_policy"
    return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float | None:
    """OpenAI's reset durations: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def _seconds_until(text: str, now: datetime) -> float | None:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds the provider asks us to wait, from ``retry-after-ms``, ``retry-after`` (seconds or a date),
    OpenAI's ``x-ratelimit-reset-*`` durations or Anthropic's ``anthropic-ratelimit-*-reset`` timestamps."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    now = now or datetime.now(tz=UTC)
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            found = _seconds_until(value, now)
            if found is not None:
                return found
    resets: list[float] = []
    exhausted: list[float] = []
    for name, value in headers.items():
        seconds: float | None = None
        if name.startswith("x-ratelimit-reset-"):
            seconds = _duration(value)
            remaining = headers.get("x-ratelimit-remaining-" + name.removeprefix("x-ratelimit-reset-"))
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-reset"):
            seconds = _seconds_until(value, now)
            remaining = headers.get(name.removesuffix("-reset") + "-remaining")
        else:
            continue
        if seconds is None:
            continue
        resets.append(seconds)
        if remaining is not None and remaining.strip() == "0":
            exhausted.append(seconds)
    if exhausted:
        return max(exhausted)  # wait for every limit we ran out of
    return min(resets) if resets else None


def backoff(round_number: int, settings: RetrySettings, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(max, base * 2^(round - 1))], in seconds."""
    ceiling = min(settings.backoff_max_ms, settings.backoff_base_ms * 2 ** max(0, round_number - 1))
    return rng.uniform(0, ceiling) / 1000


class AttemptLoop:
    """Carries out a call's ``Plan`` (the route stage's decision) through ``send``; see the module's steps."""

    def __init__(
        self,
        *,
        health: Health,
        settings: RetrySettings,
        timeout: float,
        rng: random.Random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.health = health
        self.settings = settings
        self.timeout = timeout
        self.rng = rng
        self.sleep = sleep
        self.clock = clock

    async def run(self, call: Call, plan: Plan, send: Send) -> Reply:
        group = plan.group
        if plan.max_attempts == 1 and len(group.deployments) == 1:
            single = group.deployments[0]
            if plan.allowed(single) and self.clock() < plan.deadline:
                return await self._single(call, plan, single, send)
        visited = {group.name}
        order = self._order(group, plan)
        tried: set[str] = set()
        rounds = 1
        last_error: GatewayError | None = None
        last_failure: str | None = None
        while len(call.attempts) < plan.max_attempts:
            now = self.clock()
            if now >= plan.deadline:
                break
            pick = self._pick(order, tried)
            if pick is None and not tried and order:
                # Nothing usable and nothing tried: health is advice, the upstream's answer is the truth. A
                # fallback for unavailable deployments goes first; else the first deployment is tried anyway.
                fallback = plan.fallback(group, "unavailable")
                if fallback is not None and fallback.name not in visited:
                    call.fallbacks.append(f"unavailable:{group.name}->{fallback.name}")
                    group, order, tried = fallback, self._order(fallback, plan), set()
                    visited.add(group.name)
                    continue
                pick = (order[0], 0)
            if pick is None:
                fallback = plan.fallback(group, last_failure) if last_failure else None
                if fallback is not None and fallback.name not in visited:
                    call.fallbacks.append(f"{last_failure}:{group.name}->{fallback.name}")
                    group, order, tried = fallback, self._order(fallback, plan), set()
                    visited.add(group.name)
                    continue
                if last_failure not in RETRYABLE or not order:
                    break
                ready = min(self.health.usable_in(d.id, len(d.keys)) for d in order)
                wait = max(backoff(rounds, self.settings, self.rng), ready)
                if wait * 1000 > self.settings.max_retry_wait_ms or now + wait >= plan.deadline:
                    break
                await self.sleep(wait)
                rounds += 1
                tried.clear()
                continue
            deployment, key = pick
            outcome = await self._attempt(call, plan, deployment, key, send)
            if isinstance(outcome, Reply):
                return outcome
            last_error, last_failure = outcome
            if last_failure is None:
                break
            if last_failure in ("context_window", "content_policy"):
                tried.update(d.id for d in order)  # the same model elsewhere would refuse it too
            elif not (last_failure == "rate_limit" and self._other_key(deployment)):
                tried.add(deployment.id)
        if last_error is None:
            last_error = UpstreamTimeout(
                f"No deployment answered within the call's deadline of {plan.deadline_ms} ms.", provider=""
            )
        raise last_error

    async def _single(self, call: Call, plan: Plan, deployment: Deployment, send: Send) -> Reply:
        """One deployment, one attempt (every call without a router): what the loop below would do, minus the
        ordering and bookkeeping it needs for choices. Health is advice here too: a deployment it would skip is
        tried anyway, since there is nothing else to try."""
        health = self.health
        key = health.free_key(deployment.id, len(deployment.keys)) if health.admits(deployment.id) else None
        outcome = await self._attempt(call, plan, deployment, 0 if key is None else key, send)
        if isinstance(outcome, Reply):
            return outcome
        raise outcome[0]

    def _order(self, group: Group, plan: Plan) -> list[Deployment]:
        return [d for d in group.strategy.order(group.deployments, self.health) if plan.allowed(d)]

    def _pick(self, order: list[Deployment], tried: set[str]) -> tuple[Deployment, int] | None:
        health = self.health
        several = len(order) > 1
        for deployment in order:
            if deployment.id in tried:
                continue
            if several and not deployment.target.provider.available:
                continue  # no key for it here: the others can serve
            if not health.admits(deployment.id):
                continue
            limit = deployment.max_in_flight
            if limit is not None and health.in_flight(deployment.id) >= limit:
                continue
            if (deployment.rpm or deployment.tpm) and health.over_rate(deployment.id, deployment.rpm, deployment.tpm):
                continue
            key = health.free_key(deployment.id, len(deployment.keys))
            if key is not None:
                return deployment, key
        return None

    def _other_key(self, deployment: Deployment) -> bool:
        return len(deployment.keys) > 1 and self.health.free_key(deployment.id, len(deployment.keys)) is not None

    async def _attempt(
        self, call: Call, plan: Plan, deployment: Deployment, key: int, send: Send
    ) -> Reply | tuple[GatewayError, str | None]:
        health = self.health
        spec = deployment.spec_for(key)
        pool = len(deployment.keys) > 1
        probe = health.start(deployment.id)
        if deployment.rpm:
            health.called(deployment.id)
        started = self.clock()
        timeout = max(0.001, min(self.timeout, plan.deadline - started))
        try:
            reply = await send(call, deployment, spec, timeout)
        except AttemptError as failed:
            health.release(deployment.id, probe=probe)
            failure = classify(failed.error, failed.upstream_status)
            if failure == "rate_limit":
                health.cool(deployment.id, key, failed.retry_after)
            elif failure in CIRCUIT_FAILURES:
                health.failure(deployment.id)
            self._record(call, deployment, key if pool else None, started, failed.upstream_status, failed.error)
            return failed.error, failure
        except GatewayError as error:  # refused before sending (no key, a request the protocol cannot express)
            health.release(deployment.id, probe=probe)
            self._record(call, deployment, key if pool else None, started, None, error)
            raise
        except BaseException:
            health.release(deployment.id, probe=probe)
            raise
        latency = (self.clock() - started) * 1000
        health.success(deployment.id, latency)
        self._record(call, deployment, key if pool else None, started, reply.status, None)
        call.target = deployment.target
        if reply.stream is None:
            health.release(deployment.id, probe=probe)
            if deployment.tpm:
                health.used(deployment.id, call.usage.prompt_tokens + call.usage.completion_tokens)
        else:
            reply.stream = self._tracked(call, reply.stream, deployment, probe)
        return reply

    def _record(
        self,
        call: Call,
        deployment: Deployment,
        key: int | None,
        started: float,
        status: int | None,
        error: GatewayError | None,
    ) -> None:
        target = deployment.target
        call.attempts.append(
            AttemptRecord(
                deployment=deployment.id,
                provider=target.provider.id,
                model=target.model,
                status=status,
                error=error.code if error else None,
                failure=classify(error, status) if error else None,
                latency_ms=(self.clock() - started) * 1000,
                key=key,
            )
        )

    async def _tracked(
        self, call: Call, stream: AsyncIterator[bytes], deployment: Deployment, probe: bool
    ) -> AsyncIterator[bytes]:
        # A stream is in flight until it ends: least-busy must see it, and a broken one counts as a failure.
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.health.release(deployment.id, probe=probe)
            if call.status == "error":
                self.health.failure(deployment.id)
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()  # the relay's own end sets the usage
            if deployment.tpm:
                self.health.used(deployment.id, call.usage.prompt_tokens + call.usage.completion_tokens)
