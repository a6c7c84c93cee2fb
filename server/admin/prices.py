"""``/admin/prices``: a workspace's own prices (negotiated rates, custom models) above the catalog's.

    GET    /admin/prices                      the workspace's overrides
    PUT    /admin/prices/{provider}/{model}   set one (``{provider}/*`` prices every model of a provider)
    DELETE /admin/prices/{provider}/{model}   back to the catalog / genai-prices price
    GET    /admin/prices/effective/{provider}/{model}   the price this workspace's calls get now, and its source

Prices are decimal USD text per million tokens (``"0.15"``), the request fee per request. A change reaches
every gateway's in-memory price book within ``key_refresh_interval``; costs priced by an override record
``override:<workspace>:v<version>`` as their price source.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from finance.money import Nano, format_usd, parse_usd
from finance.pricing import Price

from ..errors import InvalidRequest, NotFound
from ..price_overrides import override_price
from ..storage.prices import PriceOverride, PriceStore
from .common import Admin, admin_endpoint, json_response, read_body, services
from .openapi import Operation, routes_of

__all__ = ["OPERATIONS", "routes"]

_MODEL = re.compile(r"(?P<provider>[A-Za-z0-9._\-]{1,64})/(?P<model>[^\s]{1,256})")


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_mtok: str = Field(description="USD per million input tokens")
    output_mtok: str = "0"
    cache_read_mtok: str | None = None
    cache_write_mtok: str | None = None
    reasoning_mtok: str | None = None
    request_usd: str = Field(default="0", description="USD per request")
    note: str | None = Field(default=None, max_length=1024)


def _amount(name: str, text: str) -> Nano:
    try:
        amount = parse_usd(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", param=name) from None
    if amount < 0:
        raise InvalidRequest(f"{name}: a price must not be negative.", param=name)
    return amount


def _optional(name: str, text: str | None) -> Nano | None:
    return None if text is None else _amount(name, text)


def _model(request: Request) -> tuple[str, str]:
    """``provider/model`` from the path, with a provider the catalog knows (a typo would price nothing)."""
    name: str = request.path_params["model"]
    match = _MODEL.fullmatch(name)
    if match is None:
        raise InvalidRequest(f"{name!r} is not provider/model or provider/* (e.g. openai/gpt-4o-mini).", param="model")
    if services(request).catalog.provider(match["provider"]) is None:
        raise InvalidRequest(
            f"Unknown provider {match['provider']!r}: `alephant models --all` lists the catalog's.", param="model"
        )
    return match["provider"], match["model"]


def _usd(nano: Nano | None) -> str | None:
    return None if nano is None else format_usd(nano)


def _price_json(price: Price) -> dict[str, str | None]:
    return {
        "input_mtok": format_usd(price.input),
        "output_mtok": format_usd(price.output),
        "cache_read_mtok": _usd(price.cache_read),
        "cache_write_mtok": _usd(price.cache_write),
        "reasoning_mtok": _usd(price.reasoning),
        "request_usd": format_usd(price.request),
        "source": price.source,
    }


def _override_json(override: PriceOverride) -> dict[str, object]:
    return {
        "workspace_id": override.workspace_id,
        "model": override.model,
        **_price_json(override_price(override)),
        "version": override.version,
        "note": override.note,
        "updated_at": override.updated_at.isoformat(),
    }


def _store(request: Request) -> PriceStore:
    return PriceStore(services(request).database)


@admin_endpoint
async def list_prices(request: Request, admin: Admin) -> Response:
    overrides = await _store(request).list(admin.workspace_id)
    return json_response({"object": "list", "data": [_override_json(o) for o in overrides]})


@admin_endpoint
async def put_price(request: Request, admin: Admin) -> Response:
    provider, model = _model(request)
    body = await read_body(request, PriceIn)
    stored = await _store(request).put(
        PriceOverride(
            workspace_id=admin.workspace_id,
            model=f"{provider}/{model}",
            input_mtok_nano=_amount("input_mtok", body.input_mtok),
            output_mtok_nano=_amount("output_mtok", body.output_mtok),
            cache_read_mtok_nano=_optional("cache_read_mtok", body.cache_read_mtok),
            cache_write_mtok_nano=_optional("cache_write_mtok", body.cache_write_mtok),
            reasoning_mtok_nano=_optional("reasoning_mtok", body.reasoning_mtok),
            request_nano=_amount("request_usd", body.request_usd),
            note=body.note,
        )
    )
    return json_response(_override_json(stored))


@admin_endpoint
async def delete_price(request: Request, admin: Admin) -> Response:
    provider, model = _model(request)
    deleted = await _store(request).delete(admin.workspace_id, f"{provider}/{model}")
    if deleted is None:
        raise NotFound(f"Workspace '{admin.workspace_id}' has no price override for {provider}/{model}.")
    return json_response({**_override_json(deleted), "deleted": True})


@admin_endpoint
async def effective_price(request: Request, admin: Admin) -> Response:
    provider, model = _model(request)
    price = services(request).prices.price(provider, model, admin.workspace_id)
    if price is None:
        raise NotFound(f"No price for {provider}/{model}: set one with PUT /admin/prices/{provider}/{model}.")
    body = _price_json(price) if isinstance(price, Price) else {"source": price.source, "tiered": True}
    return json_response({"workspace_id": admin.workspace_id, "model": f"{provider}/{model}", **body})


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/prices", list_prices, "List the workspace's price overrides"),
    Operation(
        "GET",
        "/prices/effective/{model:path}",
        effective_price,
        "The price this workspace's calls of provider/model get now, and its source",
    ),
    Operation("PUT", "/prices/{model:path}", put_price, "Set the workspace's price of provider/model", PriceIn),
    Operation("DELETE", "/prices/{model:path}", delete_price, "Drop an override: back to the catalog price"),
)

routes: list[BaseRoute] = routes_of(OPERATIONS)
