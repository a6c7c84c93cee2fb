"""``/admin/routers``: routers kept in the store, served at ``/router/{id}/v1/...`` like configured ones.

Routers are gateway-wide (their URL names no workspace), so only the master key may change or list them. The
body of ``PUT /admin/routers/{id}`` is what ``routers.<id>`` holds in alephant.yaml, as JSON; it is built before
it is stored, so a router naming an unknown model or an unset key variable is a 400 and never reaches the store.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..config import ConfigError, RouterConfig
from ..errors import Conflict, InvalidRequest, NotFound, PolicyDenied
from ..routing.store import RouterSync
from .common import Admin, admin_endpoint, json_response, services
from .openapi import Operation, routes_of

__all__ = ["OPERATIONS", "routes"]

_ROUTER_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def _sync(request: Request, admin: Admin) -> RouterSync:
    if not admin.principal.is_master:
        raise PolicyDenied("Routers are gateway-wide: only the master key may manage them.")
    return services(request).router_sync


def _router_id(request: Request) -> str:
    router_id: str = request.path_params["router_id"]
    if not _ROUTER_ID.fullmatch(router_id):
        raise InvalidRequest(
            f"Router id {router_id!r} is invalid: use 1-64 letters, digits, '.', '-' or '_'.", param="router_id"
        )
    return router_id


@admin_endpoint
async def list_routers(request: Request, admin: Admin) -> Response:
    sync = _sync(request, admin)
    stored = [router.as_json() for router in await sync.store.list()]
    configured = sorted(router.id for router in sync.routers if sync.routers.configured(router.id))
    return json_response({"object": "list", "data": stored, "configured": configured})


@admin_endpoint
async def get_router(request: Request, admin: Admin) -> Response:
    sync, router_id = _sync(request, admin), _router_id(request)
    stored = await sync.store.get(router_id)
    if stored is None:
        raise NotFound(f"No stored router '{router_id}'. GET /admin/routers lists them.", code="router_not_found")
    return json_response(stored.as_json())


@admin_endpoint
async def put_router(request: Request, admin: Admin) -> Response:
    sync, router_id = _sync(request, admin), _router_id(request)
    if sync.routers.configured(router_id):
        raise Conflict(f"Router '{router_id}' is defined in alephant.yaml; change it there, or pick another id.")
    try:
        config = RouterConfig.model_validate_json(await request.body() or b"{}")
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        ]
        raise InvalidRequest("Invalid router: " + "; ".join(problems)) from None
    try:
        sync.build(router_id, config)
    except ConfigError as exc:
        raise InvalidRequest("Invalid router: " + "; ".join(exc.problems)) from None
    stored, created = await sync.store.put(router_id, config)
    await sync.load(force=True)
    return json_response(stored.as_json(), status=201 if created else 200)


@admin_endpoint
async def delete_router(request: Request, admin: Admin) -> Response:
    sync, router_id = _sync(request, admin), _router_id(request)
    if not await sync.store.delete(router_id):
        raise NotFound(f"No stored router '{router_id}'.", code="router_not_found")
    await sync.load(force=True)
    return json_response({"id": router_id, "deleted": True})


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/routers", list_routers, "List stored routers, and the ids of configured ones (master key)"),
    Operation("GET", "/routers/{router_id}", get_router, "Get a stored router (master key)"),
    Operation(
        "PUT",
        "/routers/{router_id}",
        put_router,
        "Create (201) or replace (200) a stored router, as routers.<id> in alephant.yaml (master key)",
        RouterConfig,
    ),
    Operation("DELETE", "/routers/{router_id}", delete_router, "Delete a stored router (master key)"),
)

routes: list[BaseRoute] = routes_of(OPERATIONS)
