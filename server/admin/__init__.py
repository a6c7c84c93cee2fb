"""The admin API under ``/admin``: entities, keys, budgets and limits, managed over HTTP.

Every handler is wrapped by ``admin_endpoint`` (``server.admin.common``): it authenticates the master key or a
key with the ``admin`` scope, scopes the request to a workspace, validates JSON bodies with pydantic, and renders
every failure as an OpenAI-style error naming the field at fault. Each module here contributes a ``routes``
list; this package joins them under one mount.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount

from . import document, entities, ledger, limits, payments, prices, routers

__all__ = ["routes"]

_ADMIN: list[BaseRoute] = [
    *routers.routes,
    *prices.routes,
    *ledger.routes,
    *limits.routes,
    *entities.routes,
    *payments.routes,
    *document.routes,
]

routes: list[BaseRoute] = [Mount("/admin", routes=_ADMIN)]
