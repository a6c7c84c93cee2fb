"""Routing strategies: each orders a group's deployments for one call; the attempt loop tries them in that order.

A strategy only orders. Which deployments are usable right now (circuit, cooldown, in-flight limit) is the
attempt loop's business, so every strategy gets fallbacks for free: the second deployment of its order is the
first retry. Each is documented as the steps it takes; all read ``Health`` and none writes it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

from ..config import Strategy as StrategyName
from .health import Health
from .types import Deployment, Strategy

__all__ = [
    "Cheapest",
    "LeastBusy",
    "LowestLatency",
    "Ordered",
    "RoundRobin",
    "Weighted",
    "make_strategy",
]


class Weighted:
    """Shares traffic in proportion to the deployments' weights.

    1. Give each deployment the key ``u ** (1 / weight)`` with ``u`` uniform in (0, 1] (Efraimidis-Spirakis).
    2. Order by key, highest first: the first deployment is drawn with probability ``weight / sum(weights)``,
       and the rest follow as a weighted draw without replacement (the retry order).
    """

    name = "weighted"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]:
        rng = self.rng
        return sorted(deployments, key=lambda d: (1.0 - rng.random()) ** (1.0 / d.weight), reverse=True)


class RoundRobin:
    """Takes turns.

    1. Keep one counter per group (this object is the group's).
    2. Start the order at deployment ``counter mod n`` and continue around the list; add one to the counter.
    """

    name = "round-robin"

    def __init__(self) -> None:
        self._counter = itertools.count()

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]:
        start = next(self._counter) % len(deployments)
        return [*deployments[start:], *deployments[:start]]


class LeastBusy:
    """Sends to the deployment with the fewest calls in flight from this gateway process.

    1. Read each deployment's in-flight count (streams count until they end).
    2. Order by that count, fewest first; ties are broken at random so equal deployments share the load.
    """

    name = "least-busy"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]:
        rng = self.rng
        return sorted(deployments, key=lambda d: (health.in_flight(d.id), rng.random()))


class LowestLatency:
    """Prefers the fastest deployment by EWMA latency, with the power of two choices.

    1. Deployments without a latency yet come first, in random order: each is measured once (exploration).
    2. Otherwise draw two distinct deployments at random; the one with the lower score goes first, where the
       score is the EWMA latency times (in-flight + 1) — so a fast deployment that is piling up calls loses to
       an idle one, and two choices keep a herd from all picking the same one at once.
    3. The rest follow by score, lowest first (the retry order).
    """

    name = "lowest-latency"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]:
        unmeasured = [d for d in deployments if health.latency(d.id) is None]
        if unmeasured:
            self.rng.shuffle(unmeasured)
            measured = [d for d in deployments if health.latency(d.id) is not None]
            return [*unmeasured, *sorted(measured, key=lambda d: _score(d, health))]
        ranked = sorted(deployments, key=lambda d: _score(d, health))
        if len(deployments) < 2:
            return ranked
        first, second = self.rng.sample(list(deployments), 2)
        pick = first if _score(first, health) <= _score(second, health) else second
        return [pick, *(d for d in ranked if d is not pick)]


def _score(deployment: Deployment, health: Health) -> float:
    return (health.latency(deployment.id) or 0.0) * (health.in_flight(deployment.id) + 1)


class Cheapest:
    """Sends to the deployment whose model costs least, by the catalog's prices.

    1. Each deployment's unit cost is fixed at start-up: what 1,000 prompt and 1,000 completion tokens cost
       (``finance.pricing.PriceBook``), in nano-USD.
    2. Order by that cost, cheapest first; deployments without a known price go last; ties keep config order.
    """

    name = "cheapest"

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]:
        return sorted(deployments, key=lambda d: (d.unit_cost is None, d.unit_cost or 0))


class Ordered:
    """Priority with fallback: always the same order.

    1. Order by ``priority``, lowest first; ties keep the order of the configuration.
    2. The first usable deployment serves; the next ones are the fallbacks, tried in turn.
    """

    name = "ordered"

    def order(self, deployments: Sequence[Deployment], health: Health) -> list[Deployment]:
        return sorted(deployments, key=lambda d: d.priority)


def make_strategy(name: StrategyName, rng: random.Random) -> Strategy:
    """A fresh strategy object for one group (round-robin keeps a counter per group)."""
    if name == "weighted":
        return Weighted(rng)
    if name == "round-robin":
        return RoundRobin()
    if name == "least-busy":
        return LeastBusy(rng)
    if name == "lowest-latency":
        return LowestLatency(rng)
    if name == "cheapest":
        return Cheapest()
    return Ordered()
