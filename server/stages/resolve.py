"""Model resolution: the client's model name to (provider, upstream model) through aliases and the catalog."""

from __future__ import annotations

from ..call import Call, Reply
from ..errors import ModelNotFound
from ..pipeline import Handler
from ..services import Services

__all__ = ["ResolveStage"]


class ResolveStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.catalog = services.catalog
        self.routers = services.routers

    async def __call__(self, call: Call) -> Reply:
        assert call.model is not None
        if call.router_id is not None:  # a router maps the name to a group; the route stage picks among it
            call.group = self.routers.router(call.router_id).group(call.model)
            call.target = call.group.deployments[0].target
            return await self.next(call)
        try:
            call.target = self.catalog.resolve(call.model)
        except LookupError:
            raise ModelNotFound(
                f"The model '{call.model}' does not exist here. Use 'provider/model' (such as 'mock/mock-1') "
                "or a listed name; GET /v1/models lists the models this key can use.",
                param="model",
            ) from None
        return await self.next(call)
