"""Route: the deployments a call may go to, its attempt cap and its deadline (the attempt loop's ``Plan``).

A router call (``/router/{id}/...``) goes to the group its model name maps to, with that router's fallbacks; any
other call to the one target ``resolve`` found. Deployments the call's model policy (every layer) does not allow
are never tried (the policy stage refused the call if none of its group's are allowed).
``Alephant-Max-Attempts`` and ``Alephant-Deadline-Ms`` change the cap and deadline within the configured limits.
"""

from __future__ import annotations

import time

from ..call import Call, Reply
from ..errors import InvalidHeader
from ..governance.policy import decide
from ..pipeline import Handler
from ..routing.routers import no_fallback
from ..routing.types import Deployment, Plan
from ..services import Services
from .policy import call_agent

__all__ = ["RouteStage"]


def _bounded(call: Call, header: str, ceiling: int) -> int | None:
    value = call.request.headers.get(header)
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= ceiling:
        raise InvalidHeader(f"{header} must be a whole number from 1 to {ceiling}, got {value!r}.", param=header)
    return int(text)


class RouteStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.routers = services.routers
        self.retries = services.settings.retries
        self.keyring = services.keyring

    async def __call__(self, call: Call) -> Reply:
        assert call.principal is not None and call.target is not None
        retries = self.retries
        attempts = _bounded(call, "Alephant-Max-Attempts", retries.max_attempts_limit)
        deadline_ms = _bounded(call, "Alephant-Deadline-Ms", retries.max_deadline_ms) or retries.deadline_ms
        governance = self.keyring.governance
        layers = governance.layers(call.principal, call_agent(governance, call.principal, call.context.agent_id))

        def allowed(deployment: Deployment) -> bool:
            return decide(layers, deployment.target.qualified).allowed

        if call.router_id is not None and call.group is not None:
            group, fallback = call.group, self.routers.router(call.router_id).fallback
            default_attempts = retries.max_attempts
        else:
            group, fallback = self.routers.direct(call.target), no_fallback
            default_attempts = retries.direct_max_attempts
        remaining = deadline_ms / 1000 - call.elapsed_ms() / 1000
        call.plan = Plan(
            group=group,
            fallback=fallback,
            allowed=allowed,
            max_attempts=attempts or default_attempts,
            deadline=time.monotonic() + remaining,
            deadline_ms=deadline_ms,
        )
        return await self.next(call)
