"""Model policy: a key's allowed-model globs, matched against ``provider/model``.

A key created with ``--models 'openai/*,mock/*'`` may only call those; an empty list allows everything. The
match uses the resolved, qualified name, so a bare ``gpt-4o-mini`` is judged as ``openai/gpt-4o-mini``. A
router call is judged deployment by deployment: it is allowed when the key may use one of its group's models.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from ..call import Call, Reply
from ..errors import PolicyDenied
from ..pipeline import Handler
from ..services import Services

__all__ = ["PolicyStage", "model_allowed"]


def model_allowed(patterns: tuple[str, ...], qualified: str) -> bool:
    return not patterns or any(fnmatchcase(qualified, pattern) for pattern in patterns)


class PolicyStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next

    async def __call__(self, call: Call) -> Reply:
        assert call.principal is not None and call.target is not None
        if call.group is not None:
            # A router call: each deployment is checked; those the key may not use are never tried (route stage).
            names = [d.target.qualified for d in call.group.deployments]
            if not any(model_allowed(call.principal.models, name) for name in names):
                raise PolicyDenied(
                    f"This API key may not use any model of '{call.model}' ({', '.join(names)}). "
                    f"Allowed: {', '.join(call.principal.models)}.",
                    param="model",
                )
            return await self.next(call)
        qualified = call.target.qualified
        if not model_allowed(call.principal.models, qualified):
            raise PolicyDenied(
                f"This API key may not use model '{qualified}'. Allowed: {', '.join(call.principal.models)}.",
                param="model",
            )
        return await self.next(call)
