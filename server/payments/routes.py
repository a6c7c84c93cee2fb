"""The payments routes: ``POST /v1/payments/fetch`` (buying) and every paid endpoint's path (selling)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from .buying import fetch
from .selling import PaidRoute, paid_endpoint

__all__ = ["routes"]

routes: list[BaseRoute] = [
    Route("/v1/payments/fetch", fetch, methods=["POST"]),
    PaidRoute("/{path:path}", paid_endpoint, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
]
