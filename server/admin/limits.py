"""``/admin/budgets`` and ``/admin/limits``: create, list, read and delete budgets and rate/concurrency limits.

A change is written with a bump of ``state_version('limits')``: this process reloads its snapshot at once,
every other gateway within ``key_refresh_interval``. A budget read shows its current window: spent, reserved by
calls in flight, remaining, and when it resets (for a budget on "each run" or "each agent", pass
``?scope_value=`` to read one of them).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from finance.budgets import Period
from finance.money import format_usd, to_nano

from ..errors import NotFound
from ..limits import BudgetStatus, LimitStore
from ..limits.types import BudgetRule, BudgetScope, LimitKind, LimitRule, LimitScope
from ..storage.schema import budgets, limits
from .common import Admin, admin_endpoint, json_response, read_body, services

__all__ = ["routes"]


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: BudgetScope
    scope_id: str | None = Field(default=None, description="None: each value of the scope (e.g. every run)")
    period: Period
    limit_usd: Decimal | None = Field(default=None, ge=0, description="decimal USD, e.g. '25.00'")
    limit_nano: int | None = Field(default=None, ge=0, description="nano-USD, instead of limit_usd")
    mode: str = Field(default="hard", pattern="^(hard|soft)$")
    time_zone: str = "UTC"

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris' or 'UTC'") from None
        return value

    @model_validator(mode="after")
    def _one_limit(self) -> BudgetIn:
        if (self.limit_usd is None) == (self.limit_nano is None):
            raise ValueError("give exactly one of limit_usd (decimal USD) or limit_nano (integer nano-USD)")
        return self

    @property
    def nano(self) -> int:
        return self.limit_nano if self.limit_nano is not None else to_nano(self.limit_usd or Decimal(0))


class LimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: LimitScope
    scope_id: str | None = Field(default=None, description="None: each value of the scope (e.g. every key)")
    kind: LimitKind
    limit: int = Field(ge=1)


def budget_json(rule: BudgetRule, status: BudgetStatus | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": rule.id,
        "workspace_id": rule.workspace_id,
        "scope": rule.scope,
        "scope_id": rule.scope_id,
        "period": rule.period,
        "limit_nano": rule.limit_nano,
        "limit_usd": format_usd(rule.limit_nano),
        "mode": rule.mode,
        "time_zone": rule.time_zone,
        "created_at": rule.created_at.isoformat(),
    }
    if status is not None:
        data["current"] = {
            "scope_value": status.scope_value,
            "spent_nano": status.spent_nano,
            "reserved_nano": status.reserved_nano,
            "remaining_nano": status.remaining_nano,
            "spent_usd": format_usd(status.spent_nano),
            "remaining_usd": format_usd(status.remaining_nano),
            "resets_at": status.resets_at.isoformat() if status.resets_at is not None else None,
        }
    return data


def limit_json(rule: LimitRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "workspace_id": rule.workspace_id,
        "scope": rule.scope,
        "scope_id": rule.scope_id,
        "kind": rule.kind,
        "limit": rule.limit,
        "created_at": rule.created_at.isoformat(),
    }


async def _status(request: Request, rule: BudgetRule) -> BudgetStatus | None:
    value = rule.scope_id or request.query_params.get("scope_value")
    if value is None and rule.scope == "workspace":
        value = rule.workspace_id
    if value is None:
        return None
    return await services(request).limiter.usage(rule, value)


async def _changed(request: Request) -> None:
    await services(request).limiter.snapshot.load()


@admin_endpoint
async def create_budget(request: Request, admin: Admin) -> Response:
    body = await read_body(request, BudgetIn)
    rule = await LimitStore(services(request).database).create_budget(
        workspace_id=admin.workspace_id,
        scope=body.scope,
        scope_id=body.scope_id,
        period=body.period,
        limit_nano=body.nano,
        mode=body.mode,
        time_zone=body.time_zone,
    )
    await _changed(request)
    return json_response(budget_json(rule, None), status=201)


@admin_endpoint
async def list_budgets(request: Request, admin: Admin) -> Response:
    rules = await LimitStore(services(request).database).budgets(admin.workspace_id)
    return json_response({"data": [budget_json(rule, await _status(request, rule)) for rule in rules]})


async def _find_budget(request: Request, admin: Admin) -> BudgetRule:
    wanted = request.path_params["budget_id"]
    for rule in await LimitStore(services(request).database).budgets(admin.workspace_id):
        if rule.id == wanted:
            return rule
    raise NotFound(f"No budget '{wanted}' in workspace '{admin.workspace_id}'; GET /admin/budgets lists them.")


@admin_endpoint
async def get_budget(request: Request, admin: Admin) -> Response:
    rule = await _find_budget(request, admin)
    return json_response(budget_json(rule, await _status(request, rule)))


@admin_endpoint
async def delete_budget(request: Request, admin: Admin) -> Response:
    rule = await _find_budget(request, admin)
    await LimitStore(services(request).database).delete(budgets, rule.id, workspace_id=admin.workspace_id)
    await _changed(request)
    return json_response({"id": rule.id, "deleted": True})


@admin_endpoint
async def create_limit(request: Request, admin: Admin) -> Response:
    body = await read_body(request, LimitIn)
    rule = await LimitStore(services(request).database).create_limit(
        workspace_id=admin.workspace_id, scope=body.scope, scope_id=body.scope_id, kind=body.kind, limit=body.limit
    )
    await _changed(request)
    return json_response(limit_json(rule), status=201)


@admin_endpoint
async def list_limits(request: Request, admin: Admin) -> Response:
    rules = await LimitStore(services(request).database).limits(admin.workspace_id)
    return json_response({"data": [limit_json(rule) for rule in rules]})


async def _find_limit(request: Request, admin: Admin) -> LimitRule:
    wanted = request.path_params["limit_id"]
    for rule in await LimitStore(services(request).database).limits(admin.workspace_id):
        if rule.id == wanted:
            return rule
    raise NotFound(f"No limit '{wanted}' in workspace '{admin.workspace_id}'; GET /admin/limits lists them.")


@admin_endpoint
async def get_limit(request: Request, admin: Admin) -> Response:
    return json_response(limit_json(await _find_limit(request, admin)))


@admin_endpoint
async def delete_limit(request: Request, admin: Admin) -> Response:
    rule = await _find_limit(request, admin)
    await LimitStore(services(request).database).delete(limits, rule.id, workspace_id=admin.workspace_id)
    await _changed(request)
    return json_response({"id": rule.id, "deleted": True})


routes: list[BaseRoute] = [
    Route("/budgets", create_budget, methods=["POST"]),
    Route("/budgets", list_budgets, methods=["GET"]),
    Route("/budgets/{budget_id}", get_budget, methods=["GET"]),
    Route("/budgets/{budget_id}", delete_budget, methods=["DELETE"]),
    Route("/limits", create_limit, methods=["POST"]),
    Route("/limits", list_limits, methods=["GET"]),
    Route("/limits/{limit_id}", get_limit, methods=["GET"]),
    Route("/limits/{limit_id}", delete_limit, methods=["DELETE"]),
]
