"""``/admin/paid-endpoints``, ``/admin/wallets`` and ``/admin/payments``: paid endpoints, agents' wallets, payments.

A wallet's private key never leaves the gateway: create returns its address only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from finance.payments import TermsError

from ..errors import InvalidRequest, NotFound
from ..payments.endpoints import PaidEndpointIn, endpoint_json, endpoint_row
from ..payments.store import EndpointExists, WalletExists
from ..payments.wallets import new_wallet, wallet_json
from .common import Admin, admin_endpoint, json_response, read_body, services

__all__ = ["routes"]


class WalletIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str = Field(min_length=1)
    policy: dict[str, Any] = Field(default_factory=dict, description="max_price_usd, allowed_origins, ...")


@admin_endpoint
async def create_paid_endpoint(request: Request, admin: Admin) -> Response:
    body = await read_body(request, PaidEndpointIn)
    try:
        row = endpoint_row(body, admin.workspace_id)
    except TermsError as exc:
        raise InvalidRequest(str(exc), param=str(exc).split(":", 1)[0]) from None
    payments = services(request).payments
    if body.path in payments.endpoints:
        raise InvalidRequest(f"path: {body.path} is already a paid endpoint.", param="path")
    try:
        row = await payments.store.create_endpoint(**row)
    except EndpointExists:
        raise InvalidRequest(f"path: {body.path} is already a paid endpoint.", param="path") from None
    await payments.load()
    return json_response(endpoint_json(row), status=201)


@admin_endpoint
async def list_paid_endpoints(request: Request, admin: Admin) -> Response:
    rows = await services(request).payments.store.endpoints()
    return json_response({"data": [endpoint_json(row) for row in rows if row["workspace_id"] == admin.workspace_id]})


@admin_endpoint
async def delete_paid_endpoint(request: Request, admin: Admin) -> Response:
    payments = services(request).payments
    endpoint_id = request.path_params["endpoint_id"]
    if not await payments.store.delete_endpoint(admin.workspace_id, endpoint_id):
        raise NotFound(f"No paid endpoint '{endpoint_id}' in workspace '{admin.workspace_id}'.")
    await payments.load()
    return json_response({"id": endpoint_id, "deleted": True})


@admin_endpoint
async def create_wallet(request: Request, admin: Admin) -> Response:
    body = await read_body(request, WalletIn)
    payments = services(request).payments
    if await payments.store.wallet(admin.workspace_id, body.agent_id) is not None:
        raise InvalidRequest(f"agent_id: agent '{body.agent_id}' already has a wallet.", param="agent_id")
    wallet = new_wallet(payments.box, admin.workspace_id, body.agent_id)
    try:
        stored = await payments.store.create_wallet(**{**wallet, "policy": body.policy})
    except WalletExists:
        raise InvalidRequest(f"agent_id: agent '{body.agent_id}' already has a wallet.", param="agent_id") from None
    return json_response(wallet_json(stored), status=201)


@admin_endpoint
async def list_wallets(request: Request, admin: Admin) -> Response:
    rows = await services(request).payments.store.wallets(admin.workspace_id)
    return json_response({"data": [wallet_json(row) for row in rows]})


@admin_endpoint
async def list_payments(request: Request, admin: Admin) -> Response:
    rows = await services(request).payments.store.list_payments(admin.workspace_id)
    for row in rows:
        for name in ("created_at", "settled_at"):
            row[name] = row[name].isoformat() if row[name] is not None else None
    return json_response({"data": rows})


routes: list[BaseRoute] = [
    Route("/paid-endpoints", create_paid_endpoint, methods=["POST"]),
    Route("/paid-endpoints", list_paid_endpoints, methods=["GET"]),
    Route("/paid-endpoints/{endpoint_id}", delete_paid_endpoint, methods=["DELETE"]),
    Route("/wallets", create_wallet, methods=["POST"]),
    Route("/wallets", list_wallets, methods=["GET"]),
    Route("/payments", list_payments, methods=["GET"]),
]
