"""Optional active probes: a background task that checks router deployments without waiting for traffic.

Passive health (``health.py``) only learns from real calls: a provider that went down is found by the calls
that fail on it, and an open circuit is retried by the next real call once ``open_seconds`` passed. With
``health.probe_interval`` set, every interval:

1. each deployment of every router (once per deployment id) gets ``GET {base_url}/models`` with the
   provider's key in its own auth style (``providers.registry.auth_headers``; providers without a
   passthrough auth style, such as Bedrock, are not probed);
2. a connect error, a timeout or a 5xx counts as a failure against the deployment's circuit, so a dead
   provider opens before any client call is spent on it;
3. any other answer (2xx, and 4xx: the server is there) closes a circuit that is open or half-open — the
   recovery does not wait for a real call to risk it; a closed circuit's window is left alone.
"""

from __future__ import annotations

import asyncio
import logging

from providers.errors import TransportError
from providers.registry import Upstreams, auth_headers
from providers.types import UpstreamRequest

from ..polling import Poller
from .health import Health
from .routers import Routers
from .types import Deployment

__all__ = ["Prober"]

_log = logging.getLogger("alephant.routing")


class Prober:
    """Probes every ``interval`` seconds once ``start``-ed (inside the running loop); ``stop`` ends it."""

    def __init__(
        self, *, routers: Routers, health: Health, upstreams: Upstreams, interval: float, timeout: float
    ) -> None:
        self.routers = routers
        self.health = health
        self.upstreams = upstreams
        self.interval = interval
        self.timeout = timeout
        self._poller = Poller(
            self.probe_all,
            interval=interval,
            name="alephant-probes",
            failure="active probes failed",
            first_wait=False,
            traceback=True,
        )

    def deployments(self) -> list[Deployment]:
        unique: dict[str, Deployment] = {}
        for router in self.routers:
            for group in router.groups.values():
                for deployment in group.deployments:
                    unique.setdefault(deployment.id, deployment)
        return list(unique.values())

    async def probe(self, deployment: Deployment) -> bool | None:
        """One probe: True when the deployment answered, False when it failed, None when it cannot be probed."""
        spec = deployment.target.provider
        if not spec.available:
            return None
        try:
            headers = auth_headers(spec, spec.api_key)
        except LookupError:
            return None
        request = UpstreamRequest(
            method="GET", url=spec.base_url + "/models", headers=headers, body=b"", provider_id=spec.id
        )
        try:
            response = await self.upstreams.transport(spec).send(request, timeout=self.timeout)
        except TransportError:
            ok = False
        else:
            ok = response.status < 500
        if not ok:
            self.health.failure(deployment.id)
        elif self.health.state(deployment.id) != "closed":
            self.health.success(deployment.id, self.health.latency(deployment.id) or 0.0)
        return ok

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(d) for d in self.deployments()), return_exceptions=True)

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
