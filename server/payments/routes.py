"""The payments routes: ``POST /v1/payments/fetch`` (buying), the local facilitator (development) and every
paid endpoint's path (selling)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from . import facilitator_routes
from .buying import fetch
from .selling import PaidRoute, paid_endpoint

__all__ = ["routes"]

routes: list[BaseRoute] = [
    Route("/v1/payments/fetch", fetch, methods=["POST"]),
    *facilitator_routes.routes,
    PaidRoute("/{path:path}", paid_endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
]
