"""A paid endpoint's definition as the admin API and the CLI take it, checked once for both.

The target is an upstream ``http(s)://`` URL the payment unlocks, or ``model:provider/model``: a governed model
call through the gateway's own pipeline with the request body as a Chat Completions body.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from finance.money import format_usd, to_nano
from finance.payments import Terms, find_asset

from ..config import PaidPath

__all__ = ["MODEL_TARGET", "PaidEndpointIn", "endpoint_json", "endpoint_row", "model_of"]

MODEL_TARGET = "model:"


class PaidEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: PaidPath
    target: str = Field(
        pattern=r"^(https?://|model:[^/\s]+/\S+)", description="an http(s) URL, or model:provider/model"
    )
    price_usd: Decimal = Field(gt=0)
    network: str = "eip155:84532"
    asset: str | None = None
    pay_to: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    description: str = ""


def model_of(target: str) -> str | None:
    """The ``provider/model`` of a model target, None for a URL target."""
    return target[len(MODEL_TARGET) :] if target.startswith(MODEL_TARGET) else None


def endpoint_row(body: PaidEndpointIn, workspace_id: str) -> dict[str, Any]:
    """The stored row of ``body``; ``TermsError`` (naming the field) when its terms cannot be paid as written."""
    asset = find_asset(body.network, body.asset)
    price_nano = to_nano(body.price_usd)
    Terms(asset=asset, pay_to=body.pay_to, amount_nano=price_nano)
    return {
        "workspace_id": workspace_id,
        "path": body.path,
        "target": body.target,
        "price_nano": price_nano,
        "network": body.network,
        "asset": asset.address,
        "pay_to": body.pay_to,
        "description": body.description,
    }


def endpoint_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the admin API and ``alephant paid-endpoints list --json`` show it."""
    return {
        **{k: v for k, v in row.items() if k != "created_at"},
        "price_usd": format_usd(row["price_nano"]),
        "created_at": row["created_at"].isoformat(),
    }
