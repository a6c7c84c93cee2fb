"""``/admin/paid-endpoints``, ``/admin/wallets`` and ``/admin/payments``: paid endpoints, agents' wallets, payments.

A wallet's private key never leaves the gateway: create returns its address only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from finance.money import format_usd, to_nano
from finance.payments import Terms, TermsError, find_asset

from ..errors import InvalidRequest, NotFound
from ..payments.wallets import new_wallet
from .common import Admin, admin_endpoint, json_response, read_body, services

__all__ = ["routes"]


class PaidEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(pattern=r"^/")
    target: str = Field(pattern=r"^https?://")
    price_usd: Decimal = Field(gt=0)
    network: str = "eip155:84532"
    asset: str | None = None
    pay_to: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    description: str = ""


class WalletIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str = Field(min_length=1)
    policy: dict[str, Any] = Field(default_factory=dict, description="max_price_usd, allowed_origins, ...")


def _endpoint_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in row.items() if k != "created_at"},
        "price_usd": format_usd(row["price_nano"]),
        "created_at": row["created_at"].isoformat(),
    }


@admin_endpoint
async def create_paid_endpoint(request: Request, admin: Admin) -> Response:
    body = await read_body(request, PaidEndpointIn)
    try:
        asset = find_asset(body.network, body.asset)
        Terms(asset=asset, pay_to=body.pay_to, amount_nano=to_nano(body.price_usd))
    except TermsError as exc:
        raise InvalidRequest(str(exc), param=str(exc).split(":", 1)[0]) from None
    payments = services(request).payments
    if body.path in payments.endpoints:
        raise InvalidRequest(f"path: {body.path} is already a paid endpoint.", param="path")
    row = await payments.store.create_endpoint(
        workspace_id=admin.workspace_id,
        path=body.path,
        target=body.target,
        price_nano=to_nano(body.price_usd),
        network=body.network,
        asset=asset.address,
        pay_to=body.pay_to,
        description=body.description,
    )
    await payments.load()
    return json_response(_endpoint_json(row), status=201)


@admin_endpoint
async def list_paid_endpoints(request: Request, admin: Admin) -> Response:
    rows = await services(request).payments.store.endpoints()
    return json_response({"data": [_endpoint_json(row) for row in rows if row["workspace_id"] == admin.workspace_id]})


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
    wallet = new_wallet(payments, admin.workspace_id, body.agent_id)
    stored = await payments.store.create_wallet(**{**wallet, "policy": body.policy})
    return json_response(_wallet_json(stored), status=201)


def _wallet_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "agent_id": row["agent_id"],
        "address": row["address"],
        "policy": row["policy"],
        "created_at": row["created_at"].isoformat(),
    }


@admin_endpoint
async def list_wallets(request: Request, admin: Admin) -> Response:
    rows = await services(request).payments.store.wallets(admin.workspace_id)
    return json_response({"data": [_wallet_json(row) for row in rows]})


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
