"""The routing vocabulary: a deployment, a group of them, a call's plan and the record of one attempt."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from providers.catalog import Resolved
from providers.types import ProviderSpec

if TYPE_CHECKING:
    from .health import Health

__all__ = [
    "CIRCUIT_FAILURES",
    "RETRYABLE",
    "AttemptRecord",
    "Deployment",
    "Group",
    "Plan",
    "Strategy",
]

RETRYABLE = frozenset({"rate_limit", "server_error", "timeout", "unavailable"})
"""Failure classes worth another attempt (connect errors, 408, 409, 429, 5xx)."""
CIRCUIT_FAILURES = frozenset({"server_error", "timeout", "unavailable"})
"""Failure classes that count against a deployment's circuit (a 429 cools it down instead; 4xx are the caller's)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """One place a call can go: a resolved ``provider/model`` with its key pool, weight and limits."""

    id: str
    target: Resolved
    weight: float = 1.0
    priority: int = 0
    max_in_flight: int | None = None
    rpm: int | None = None  # requests per rolling minute, per gateway process
    tpm: int | None = None  # tokens per rolling minute, per gateway process
    unit_cost: int | None = None  # nano-USD of 1k prompt + 1k completion tokens (the cheapest strategy)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.target.provider.key_pool

    def spec_for(self, key_index: int | None) -> ProviderSpec:
        """The provider spec speaking with key number ``key_index`` of the pool."""
        spec = self.target.provider
        keys = spec.key_pool
        if key_index is None or len(keys) < 2:
            return spec
        return spec.with_key(keys[key_index % len(keys)])


class Strategy(Protocol):
    """Orders a group's deployments for one call: the first usable one is tried first.

    Example::

        order = group.strategy.order(group.deployments, health)
    """

    name: str

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """The deployments one model name maps to, the strategy over them and the fallbacks by failure class."""

    name: str
    deployments: tuple[Deployment, ...]
    strategy: Strategy
    fallbacks: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True, kw_only=True)
class Plan:
    """What the route stage decided for one call; the attempt loop carries it out."""

    group: Group
    fallback: Callable[[Group, str], Group | None]  # (group, failure class) -> the group to fall back to
    allowed: Callable[[Deployment], bool]  # the key's model policy, for every deployment a fallback reaches
    max_attempts: int
    deadline: float  # time.monotonic() after which no new attempt starts
    deadline_ms: int  # the same, as the call's total budget (for messages)


@dataclasses.dataclass(slots=True, kw_only=True)
class AttemptRecord:
    """One attempt as the log row keeps it."""

    deployment: str
    provider: str
    model: str
    status: int | None  # the upstream's HTTP status; None when no answer came (connect error, timeout)
    error: str | None  # the gateway error code of a failed attempt
    failure: str | None  # its failure class (rate_limit, server_error, timeout, ...)
    latency_ms: float
    key: int | None = None  # which key of a pool (0-based), when the provider has several

    def compact(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "d": self.deployment,
            "status": self.status,
            "ms": round(self.latency_ms, 1),
        }
        if self.deployment != f"{self.provider}/{self.model}":
            row["model"] = f"{self.provider}/{self.model}"
        if self.error:
            row["error"] = self.error
            row["class"] = self.failure
        if self.key is not None:
            row["key"] = self.key
        return row
