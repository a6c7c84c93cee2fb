"""Deployment health: a passive circuit breaker, 429 cooldowns, EWMA latency, in-flight counts and the
requests and tokens of the last minute (for deployments' ``rpm``/``tpm`` limits).

Everything here is in memory and per process, updated by the attempt loop and read by the strategies; nothing
touches a database or the network. The circuit of one deployment:

    closed     --(failures / outcomes >= error_ratio, at least min_requests outcomes in the window)--> open
    open       --(open_seconds elapsed)--> half-open: up to half_open_probes calls go through as probes
    half-open  --(a probe succeeds)--> closed (window cleared)    --(a probe fails)--> open again

A 429 does not count against the circuit: it cools the key that got it down until the provider's reset (or
``cooldown_ms``); a deployment is cooling when every key of its pool is.

A deployment's ``rpm``/``tpm`` is counted over a rolling minute in this process: the router skips a deployment
whose minute is full, as it skips one at ``max_in_flight``, before the provider would answer 429. Tokens are
known only when a call ends, so ``tpm`` may overshoot by the calls in flight when it fills.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ..config import HealthSettings

__all__ = ["DeploymentHealth", "Health"]


@dataclasses.dataclass(slots=True)
class DeploymentHealth:
    id: str
    # Outcomes in the window, counted per second: [second, calls, failures]. One tuple per call held every call
    # of the window (150,000 of them at 5,000 RPS over 30 s); a bucket per second holds 30.
    outcomes: deque[list[int]] = dataclasses.field(default_factory=deque)
    calls: int = 0  # outcomes in the window
    failures: int = 0  # failed outcomes in the window
    opened_at: float | None = None  # when the circuit opened; None when closed
    probes: int = 0  # half-open probes in flight
    key_cooldowns: dict[int, float] = dataclasses.field(default_factory=dict)  # key index -> cooling until
    ewma_ms: float | None = None
    in_flight: int = 0
    minute_calls: deque[float] = dataclasses.field(default_factory=deque)  # start times (rpm-limited only)
    minute_usage: deque[tuple[float, int]] = dataclasses.field(default_factory=deque)  # (end, tokens) (tpm only)
    minute_tokens: int = 0  # sum of the tokens in ``minute_usage``
    successes_total: int = 0
    failures_total: int = 0


class Health:
    """The health of every deployment this process has sent to. ``clock`` is monotonic seconds."""

    def __init__(self, settings: HealthSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._entries: dict[str, DeploymentHealth] = {}

    def entry(self, deployment_id: str) -> DeploymentHealth:
        found = self._entries.get(deployment_id)
        if found is None:
            found = self._entries[deployment_id] = DeploymentHealth(deployment_id)
        return found

    def __iter__(self) -> Iterator[DeploymentHealth]:
        return iter(list(self._entries.values()))

    # -- reading ------------------------------------------------------------------------------------------------

    def state(self, deployment_id: str) -> str:
        entry = self._entries.get(deployment_id)
        if entry is None or entry.opened_at is None:
            return "closed"
        return "half-open" if self.clock() - entry.opened_at >= self.settings.open_seconds else "open"

    def admits(self, deployment_id: str) -> bool:
        """Whether the circuit lets one more call through now (a half-open circuit admits a few probes)."""
        state = self.state(deployment_id)
        if state == "closed":
            return True
        return state == "half-open" and self.entry(deployment_id).probes < self.settings.half_open_probes

    def free_key(self, deployment_id: str, pool_size: int) -> int | None:
        """The first key of the pool not cooling down (0 for a single key), or None when all are."""
        entry = self._entries.get(deployment_id)
        if entry is None or not entry.key_cooldowns:
            return 0
        now = self.clock()
        for index in range(max(1, pool_size)):
            if entry.key_cooldowns.get(index, 0.0) <= now:
                return index
        return None

    def usable_in(self, deployment_id: str, pool_size: int) -> float:
        """Seconds until the deployment can be tried again (0 when it can now)."""
        entry = self._entries.get(deployment_id)
        if entry is None:
            return 0.0
        now = self.clock()
        waits = [0.0]
        if entry.opened_at is not None:
            waits.append(entry.opened_at + self.settings.open_seconds - now)
        if entry.key_cooldowns:
            waits.append(min(entry.key_cooldowns.get(i, 0.0) for i in range(max(1, pool_size))) - now)
        return max(waits)

    def in_flight(self, deployment_id: str) -> int:
        entry = self._entries.get(deployment_id)
        return entry.in_flight if entry else 0

    def over_rate(self, deployment_id: str, rpm: int | None, tpm: int | None) -> bool:
        """Whether the deployment's last minute already holds ``rpm`` calls or ``tpm`` tokens."""
        entry = self._entries.get(deployment_id)
        if entry is None:
            return False
        self._prune_minute(entry, self.clock())
        return (rpm is not None and len(entry.minute_calls) >= rpm) or (tpm is not None and entry.minute_tokens >= tpm)

    def latency(self, deployment_id: str) -> float | None:
        entry = self._entries.get(deployment_id)
        return entry.ewma_ms if entry else None

    def error_ratio(self, entry: DeploymentHealth) -> float:
        self._prune(entry, self.clock())
        return entry.failures / entry.calls if entry.calls else 0.0

    # -- writing ------------------------------------------------------------------------------------------------

    def start(self, deployment_id: str) -> bool:
        """An attempt begins; returns whether it is a half-open probe (pass it back to ``release``)."""
        entry = self.entry(deployment_id)
        entry.in_flight += 1
        probe = self.state(deployment_id) == "half-open"
        if probe:
            entry.probes += 1
        return probe

    def release(self, deployment_id: str, *, probe: bool) -> None:
        entry = self.entry(deployment_id)
        entry.in_flight = max(0, entry.in_flight - 1)
        if probe:
            entry.probes = max(0, entry.probes - 1)

    def called(self, deployment_id: str) -> None:
        """A call to an ``rpm``-limited deployment starts: it counts in its minute (others are not counted)."""
        entry = self.entry(deployment_id)
        now = self.clock()
        self._prune_minute(entry, now)
        entry.minute_calls.append(now)

    def used(self, deployment_id: str, tokens: int) -> None:
        """A call to a ``tpm``-limited deployment ended having used ``tokens``: they count in its minute."""
        if tokens <= 0:
            return
        entry = self.entry(deployment_id)
        now = self.clock()
        self._prune_minute(entry, now)
        entry.minute_usage.append((now, tokens))
        entry.minute_tokens += tokens

    def success(self, deployment_id: str, latency_ms: float) -> None:
        entry = self.entry(deployment_id)
        now = self.clock()
        entry.successes_total += 1
        alpha = self.settings.latency_alpha
        entry.ewma_ms = latency_ms if entry.ewma_ms is None else alpha * latency_ms + (1 - alpha) * entry.ewma_ms
        if entry.opened_at is not None:  # a probe (or a call that raced the opening) came back fine
            entry.opened_at = None
            entry.outcomes.clear()
            entry.calls = entry.failures = 0
        self._record(entry, now, ok=True)

    def failure(self, deployment_id: str) -> None:
        entry = self.entry(deployment_id)
        now = self.clock()
        entry.failures_total += 1
        self._record(entry, now, ok=False)
        if entry.opened_at is not None:
            if now - entry.opened_at >= self.settings.open_seconds:
                entry.opened_at = now  # a failed probe opens the circuit again
            return
        if entry.calls >= self.settings.min_requests and entry.failures / entry.calls >= self.settings.error_ratio:
            entry.opened_at = now

    def cool(self, deployment_id: str, key_index: int, seconds: float | None) -> None:
        """A 429 on one key: that key rests until the provider's reset (``cooldown_ms`` when none was given)."""
        entry = self.entry(deployment_id)
        wait = seconds if seconds is not None else self.settings.cooldown_ms / 1000
        until = self.clock() + max(0.0, wait)
        entry.key_cooldowns[key_index] = max(entry.key_cooldowns.get(key_index, 0.0), until)

    def _record(self, entry: DeploymentHealth, now: float, *, ok: bool) -> None:
        second, failed = int(now), 0 if ok else 1
        outcomes = entry.outcomes
        if outcomes and outcomes[-1][0] == second:
            bucket = outcomes[-1]
            bucket[1] += 1
            bucket[2] += failed
        else:
            outcomes.append([second, 1, failed])
        entry.calls += 1
        entry.failures += failed
        self._prune(entry, now)

    def _prune(self, entry: DeploymentHealth, now: float) -> None:
        """Drop the seconds wholly before the window (so the window is ``window_seconds`` to one second more)."""
        horizon = now - self.settings.window_seconds
        outcomes = entry.outcomes
        while outcomes and outcomes[0][0] + 1 <= horizon:
            _, calls, failures = outcomes.popleft()
            entry.calls -= calls
            entry.failures -= failures

    @staticmethod
    def _prune_minute(entry: DeploymentHealth, now: float) -> None:
        horizon = now - 60.0
        calls, usage = entry.minute_calls, entry.minute_usage
        while calls and calls[0] < horizon:
            calls.popleft()
        while usage and usage[0][0] < horizon:
            entry.minute_tokens -= usage.popleft()[1]

    # -- reporting ----------------------------------------------------------------------------------------------

    def report(self, deployment_id: str, pool_size: int = 1) -> dict[str, Any]:
        """The state ``GET /health/providers`` shows for one deployment."""
        entry = self.entry(deployment_id)
        now = self.clock()
        cooling = {i: until - now for i, until in entry.key_cooldowns.items() if until > now}
        all_cooling = len(cooling) >= max(1, pool_size)
        cooldown = min(cooling.values()) if all_cooling else 0.0
        return {
            "state": self.state(deployment_id),
            "cooldown_seconds": round(cooldown, 3) if cooldown > 0 else None,
            "cooldown_until": _wall(cooldown) if cooldown > 0 else None,
            "keys": max(1, pool_size),
            "keys_cooling": len(cooling),
            "error_ratio": round(self.error_ratio(entry), 4),
            "outcomes_in_window": entry.calls,
            "ewma_latency_ms": round(entry.ewma_ms, 2) if entry.ewma_ms is not None else None,
            "in_flight": entry.in_flight,
            "calls_last_minute": len(entry.minute_calls) if entry.minute_calls else None,
            "tokens_last_minute": entry.minute_tokens if entry.minute_usage else None,
            "successes": entry.successes_total,
            "failures": entry.failures_total,
        }


def _wall(seconds_from_now: float) -> str:
    return (datetime.now(tz=UTC) + timedelta(seconds=seconds_from_now)).isoformat(timespec="milliseconds")
