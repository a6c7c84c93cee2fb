"""The admin OpenAPI document covers every mounted admin route, so a route added without an ``Operation``
fails here; payments' routes (another module's, with their own description) are the only exception.

In-process (ASGI transport): the document holds shapes, not data, and needs no store.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from server.admin import routes as admin_routes
from server.admin.openapi import openapi_path

pytestmark = pytest.mark.anyio

_PAYMENTS = ("/admin/paid-endpoints", "/admin/wallets", "/admin/payments")
_DOCUMENT = "/admin/openapi.json"


def mounted(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    """Every (method, OpenAPI path) the admin mount serves."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= mounted(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method.lower(), openapi_path(prefix + route.path)))
    return found


async def document() -> dict[str, Any]:
    transport = httpx.ASGITransport(app=Starlette(routes=admin_routes))
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        answer = await client.get(_DOCUMENT)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


async def test_every_admin_route_outside_payments_is_documented() -> None:
    paths = (await document())["paths"]
    served = {(m, p) for m, p in mounted(admin_routes) if p != _DOCUMENT and not p.startswith(_PAYMENTS)}
    documented = {(method, path) for path, methods in paths.items() for method in methods}
    assert served - documented == set(), "admin routes without an Operation (declare one in their module)"
    assert documented - served == set(), "documented operations that are not mounted"
    for expected in [
        ("delete", "/admin/workspaces/{workspace_id}"),
        ("delete", "/admin/departments/{department_id}"),
        ("delete", "/admin/agents/{agent_id}"),
        ("post", "/admin/budgets"),
        ("delete", "/admin/limits/{limit_id}"),
        ("put", "/admin/prices/{model}"),
        ("get", "/admin/prices/effective/{model}"),
        ("post", "/admin/ledger"),
        ("put", "/admin/routers/{router_id}"),
    ]:
        assert expected in documented, expected


async def test_operations_are_valid_and_carry_their_schemas() -> None:
    doc = await document()
    operations = [entry for methods in doc["paths"].values() for entry in methods.values()]
    ids = [entry["operationId"] for entry in operations]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for path, methods in doc["paths"].items():
        declared = {p["name"] for entry in methods.values() for p in entry["parameters"] if p["in"] == "path"}
        assert declared == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path
    schemas = doc["components"]["schemas"]
    budget_in = schemas["BudgetIn"]
    assert {"scope", "period", "limit_usd", "time_zone"} <= set(budget_in["properties"])
    assert "workspace" in budget_in["properties"]["time_zone"]["description"]
    assert {"spent_nano", "reserved_nano", "resets_at"} <= set(schemas["BudgetWindowOut"]["properties"])
    assert {"kind", "limit"} <= set(schemas["LimitIn"]["properties"])
    assert {"input_mtok", "output_mtok"} <= set(schemas["PriceIn"]["properties"])
    assert {"kind", "amount_usd", "idempotency_key"} <= set(schemas["EntryIn"]["properties"])
    router_body = doc["paths"]["/admin/routers/{router_id}"]["put"]["requestBody"]["content"]["application/json"]
    assert router_body["schema"]["$ref"].endswith("/RouterConfig")
    conflict = doc["paths"]["/admin/agents/{agent_id}"]["delete"]["responses"]["409"]
    assert "referenced" in conflict["description"]
