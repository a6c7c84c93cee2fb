"""``GET /admin/openapi.json``: one OpenAPI 3.1 document for every admin module that declares its operations.

Each module lists its ``Operation``s once; they become its routes and, joined here, this document, so a route
cannot exist without its entry (``tests/test_admin_openapi.py`` walks the mounted routes to hold that).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import entities, ledger, limits, prices, routers
from .openapi import Operation, openapi_route

__all__ = ["OPERATIONS", "routes"]

OPERATIONS: tuple[Operation, ...] = (
    *entities.OPERATIONS,
    *limits.OPERATIONS,
    *prices.OPERATIONS,
    *ledger.OPERATIONS,
    *routers.OPERATIONS,
)

routes: list[BaseRoute] = [openapi_route(OPERATIONS)]
