"""Routers: ``/router/{id}/v1/...`` maps the client's model name to a group of deployments.

Routers come from two places: ``routers:`` in ``alephant.yaml``, built once at start-up, and the store
(``/admin/routers``), rebuilt into the same in-memory snapshot when their version row moves
(``server.routing.store``). A stored router may not take the id of a configured one. A call without a router is
a group of one deployment: the target the catalog resolved.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Mapping
from typing import Any

from finance.pricing import PriceBook
from providers.catalog import Catalog, Resolved
from providers.types import Usage

from ..config import ConfigError, DeploymentConfig, RouterConfig, Settings
from ..errors import ModelNotFound, NotFound
from .health import Health
from .strategies import Ordered, make_strategy
from .types import RETRYABLE, Deployment, Group

__all__ = ["Router", "Routers", "build_router", "health_report", "no_fallback"]

_DIRECT_GROUPS = 10_000  # cached one-deployment groups of calls without a router

_UNIT = Usage(prompt_tokens=1000, completion_tokens=1000)


@dataclasses.dataclass(frozen=True, slots=True)
class Router:
    id: str
    groups: dict[str, Group]

    def group(self, model: str) -> Group:
        found = self.groups.get(model) or self.groups.get("*")
        if found is None:
            names = ", ".join(name for name in self.groups if "/" not in name)
            raise ModelNotFound(f"Router '{self.id}' has no model '{model}'. Its models: {names}.", param="model")
        return found

    def fallback(self, group: Group, failure: str) -> Group | None:
        """Where a group's calls go when they failed with ``failure`` (``default`` covers transient failures)."""
        target = group.fallbacks.get(failure)
        if target is None and failure in RETRYABLE:
            target = group.fallbacks.get("default")
        return self.groups.get(target) if target is not None else None


def build_router(
    router_id: str,
    config: RouterConfig,
    catalog: Catalog,
    prices: PriceBook,
    env: Mapping[str, str],
    rng: random.Random,
    *,
    where: str = "routers",
) -> Router:
    """One router from its configuration; ``ConfigError`` naming every problem (unknown model, unset key)."""
    problems: list[str] = []
    groups = _groups(router_id, config, catalog, prices, env, rng, problems)
    if problems:
        raise ConfigError(where, problems)
    return Router(router_id, groups)


class Routers:
    """Every router (configured and stored), and one-deployment groups for calls without a router."""

    def __init__(self, routers: Mapping[str, Router]) -> None:
        self._configured = dict(routers)
        self._routers = dict(routers)
        self._direct = Ordered()
        self._direct_groups: dict[str, Group] = {}

    @classmethod
    def build(
        cls, settings: Settings, catalog: Catalog, prices: PriceBook, env: Mapping[str, str], rng: random.Random
    ) -> Routers:
        problems: list[str] = []
        built: dict[str, Router] = {}
        for router_id, config in settings.routers.items():
            groups = _groups(router_id, config, catalog, prices, env, rng, problems)
            built[router_id] = Router(router_id, groups)
        if problems:
            raise ConfigError("routers", problems)
        return cls(built)

    def __iter__(self) -> Iterator[Router]:
        return iter(self._routers.values())

    def configured(self, router_id: str) -> bool:
        """Whether ``router_id`` comes from alephant.yaml (the admin API may not replace it)."""
        return router_id in self._configured

    def replace_stored(self, stored: Mapping[str, Router]) -> None:
        """Swap in the stored routers (one assignment: a call in flight keeps the router it resolved)."""
        self._routers = {**stored, **self._configured}

    def router(self, router_id: str) -> Router:
        router = self._routers.get(router_id)
        if router is None:
            known = ", ".join(sorted(self._routers)) or "none are configured"
            raise NotFound(f"No router '{router_id}' (routers: {known}). See README 'Routing and resilience'.")
        return router

    def direct(self, target: Resolved) -> Group:
        """A call without a router: its one resolved target, retried but with nowhere to fall back to.

        Groups are immutable, so each is built once per model name (bounded: clients choose the names).
        """
        group = self._direct_groups.get(target.qualified)
        if group is None or group.deployments[0].target != target:
            if len(self._direct_groups) >= _DIRECT_GROUPS:
                self._direct_groups.clear()
            deployment = Deployment(id=target.qualified, target=target)
            group = Group(name=target.qualified, deployments=(deployment,), strategy=self._direct)
            self._direct_groups[target.qualified] = group
        return group


def no_fallback(group: Group, failure: str) -> Group | None:
    """The fallback rule of a call without a router: there is nowhere to fall back to."""
    return None


def _groups(
    router_id: str,
    config: RouterConfig,
    catalog: Catalog,
    prices: PriceBook,
    env: Mapping[str, str],
    rng: random.Random,
    problems: list[str],
) -> dict[str, Group]:
    groups: dict[str, Group] = {}
    for name, spec in config.models.items():
        deployments: list[Deployment] = []
        seen: set[str] = set()
        for index, item in enumerate(spec.deployments):
            where = f"routers.{router_id}.models.{name}.deployments.{index}"
            deployment = _deployment(item, catalog, prices, env, where, problems)
            if deployment is None:
                continue
            if deployment.id in seen:  # the same provider/model twice (with other keys, say): keep both apart
                deployment = dataclasses.replace(deployment, id=f"{deployment.id}#{index}")
            seen.add(deployment.id)
            deployments.append(deployment)
        strategy = make_strategy(spec.strategy or config.strategy, rng)
        fallbacks: dict[str, str] = {str(failure): target for failure, target in spec.fallbacks.items()}
        groups[name] = Group(name=name, deployments=tuple(deployments), strategy=strategy, fallbacks=fallbacks)
    # A fallback may name a provider/model instead of a group: it becomes a group of that one deployment.
    for group in list(groups.values()):
        for failure, target in group.fallbacks.items():
            if target in groups:
                continue
            where = f"routers.{router_id}.models.{group.name}.fallbacks.{failure}"
            deployment = _deployment(DeploymentConfig(model=target), catalog, prices, env, where, problems)
            if deployment is not None:
                groups[target] = Group(name=target, deployments=(deployment,), strategy=Ordered())
    return groups


def _deployment(
    item: DeploymentConfig,
    catalog: Catalog,
    prices: PriceBook,
    env: Mapping[str, str],
    where: str,
    problems: list[str],
) -> Deployment | None:
    try:
        target = catalog.resolve(item.model)
    except LookupError:
        problems.append(f"{where}.model: got {item.model!r}, no such provider in the catalog")
        return None
    names = item.api_key_envs or ((item.api_key_env,) if item.api_key_env else ())
    if names:
        keys = tuple(env[name] for name in names if env.get(name))
        if not keys:
            problems.append(f"{where}: none of {', '.join(names)} is set in the environment")
            return None
        spec = dataclasses.replace(target.provider, api_key=keys[0], keys=keys, api_key_env=names[0])
        target = Resolved(spec, target.model)
    cost = prices.cost(target.provider.id, target.model, _UNIT)
    return Deployment(
        id=item.id or target.qualified,
        target=target,
        weight=item.weight,
        priority=item.priority,
        max_in_flight=item.max_in_flight,
        rpm=item.rpm,
        tpm=item.tpm,
        unit_cost=cost.nano if cost.source is not None else None,
    )


def health_report(routers: Routers, health: Health) -> dict[str, Any]:
    """``GET /health/providers``: every deployment of every router, then every other one this process used."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    layout: dict[str, dict[str, Any]] = {}
    for router in routers:
        layout[router.id] = {}
        for group in router.groups.values():
            layout[router.id][group.name] = {
                "strategy": group.strategy.name,
                "deployments": [d.id for d in group.deployments],
                "fallbacks": dict(group.fallbacks),
            }
            for deployment in group.deployments:
                if deployment.id in seen:
                    continue
                seen.add(deployment.id)
                target = deployment.target
                rows.append(
                    {
                        "id": deployment.id,
                        "provider": target.provider.id,
                        "model": target.model,
                        **health.report(deployment.id, len(deployment.keys)),
                    }
                )
    for entry in health:
        if entry.id not in seen:
            provider, _, model = entry.id.partition("/")
            rows.append({"id": entry.id, "provider": provider, "model": model, **health.report(entry.id)})
    return {"deployments": rows, "routers": layout}
