"""``/admin/budgets`` and ``/admin/limits``: create, list, read and delete budgets and rate/concurrency limits.

A change is written with a bump of ``state_version('limits')``: this process reloads its snapshot at once,
every other gateway within ``key_refresh_interval``. A budget read shows its current window: spent, reserved by
calls in flight, remaining, and when it resets (for a budget on "each run" or "each agent", pass
``?scope_value=`` to read one of them). A budget created without ``time_zone`` takes its workspace's, so its
periods follow the workspace's calendar.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from finance.budgets import Period
from finance.money import format_usd, to_nano

from ..errors import NotFound
from ..limits import BudgetStatus, LimitStore
from ..limits.types import BudgetRule, BudgetScope, LimitKind, LimitRule, LimitScope
from ..storage.governance import GovernanceStore
from ..storage.schema import budgets, limits
from .common import Admin, admin_endpoint, json_response, read_body, services
from .openapi import Operation, routes_of

__all__ = ["OPERATIONS", "routes"]


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: BudgetScope
    scope_id: str | None = Field(default=None, description="None: each value of the scope (e.g. every run)")
    period: Period
    limit_usd: Decimal | None = Field(default=None, ge=0, description="decimal USD, e.g. '25.00'")
    limit_nano: int | None = Field(default=None, ge=0, description="nano-USD, instead of limit_usd")
    mode: str = Field(default="hard", pattern="^(hard|soft)$")
    time_zone: str | None = Field(default=None, description="IANA name; default: the workspace's time zone")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
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


class BudgetWindowOut(BaseModel):
    """A budget's current window for one scope value; amounts in nano-USD and as decimal USD text."""

    scope_value: str
    spent_nano: int
    reserved_nano: int = Field(description="held by calls in flight")
    remaining_nano: int
    spent_usd: str
    remaining_usd: str
    resets_at: datetime | None = Field(description="None for a total budget")


class BudgetOut(BaseModel):
    id: str
    workspace_id: str
    scope: BudgetScope
    scope_id: str | None
    period: Period
    limit_nano: int
    limit_usd: str
    mode: str
    time_zone: str
    created_at: datetime
    current: BudgetWindowOut | None = Field(
        default=None, description="absent on creation, and for a budget on each value without ?scope_value="
    )


class BudgetListOut(BaseModel):
    data: list[BudgetOut]


class LimitOut(BaseModel):
    id: str
    workspace_id: str
    scope: LimitScope
    scope_id: str | None
    kind: LimitKind
    limit: int
    created_at: datetime


class LimitListOut(BaseModel):
    data: list[LimitOut]


class DeletedOut(BaseModel):
    id: str
    deleted: bool


def budget_out(rule: BudgetRule, status: BudgetStatus | None) -> BudgetOut:
    current = None
    if status is not None:
        current = BudgetWindowOut(
            scope_value=status.scope_value,
            spent_nano=status.spent_nano,
            reserved_nano=status.reserved_nano,
            remaining_nano=status.remaining_nano,
            spent_usd=format_usd(status.spent_nano),
            remaining_usd=format_usd(status.remaining_nano),
            resets_at=status.resets_at,
        )
    return BudgetOut(
        id=rule.id,
        workspace_id=rule.workspace_id,
        scope=rule.scope,
        scope_id=rule.scope_id,
        period=rule.period,
        limit_nano=rule.limit_nano,
        limit_usd=format_usd(rule.limit_nano),
        mode=rule.mode,
        time_zone=rule.time_zone,
        created_at=rule.created_at,
        current=current,
    )


def limit_out(rule: LimitRule) -> LimitOut:
    return LimitOut(
        id=rule.id,
        workspace_id=rule.workspace_id,
        scope=rule.scope,
        scope_id=rule.scope_id,
        kind=rule.kind,
        limit=rule.limit,
        created_at=rule.created_at,
    )


async def workspace_time_zone(request: Request, workspace_id: str) -> str:
    """The workspace's IANA zone: from the gateway's governance snapshot (no query), else the store (a workspace
    created within the last ``key_refresh_interval``), else UTC."""
    found = services(request)
    known = found.keyring.governance.workspaces.get(workspace_id)
    if known is not None:
        return known.time_zone
    return await GovernanceStore(found.database).time_zone(workspace_id)


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
        time_zone=body.time_zone or await workspace_time_zone(request, admin.workspace_id),
    )
    await _changed(request)
    return json_response(budget_out(rule, None), status=201)


@admin_endpoint
async def list_budgets(request: Request, admin: Admin) -> Response:
    rules = await LimitStore(services(request).database).budgets(admin.workspace_id)
    return json_response(BudgetListOut(data=[budget_out(rule, await _status(request, rule)) for rule in rules]))


async def _find_budget(request: Request, admin: Admin) -> BudgetRule:
    wanted = request.path_params["budget_id"]
    for rule in await LimitStore(services(request).database).budgets(admin.workspace_id):
        if rule.id == wanted:
            return rule
    raise NotFound(f"No budget '{wanted}' in workspace '{admin.workspace_id}'; GET /admin/budgets lists them.")


@admin_endpoint
async def get_budget(request: Request, admin: Admin) -> Response:
    rule = await _find_budget(request, admin)
    return json_response(budget_out(rule, await _status(request, rule)))


@admin_endpoint
async def delete_budget(request: Request, admin: Admin) -> Response:
    rule = await _find_budget(request, admin)
    await LimitStore(services(request).database).delete(budgets, rule.id, workspace_id=admin.workspace_id)
    await _changed(request)
    return json_response(DeletedOut(id=rule.id, deleted=True))


@admin_endpoint
async def create_limit(request: Request, admin: Admin) -> Response:
    body = await read_body(request, LimitIn)
    rule = await LimitStore(services(request).database).create_limit(
        workspace_id=admin.workspace_id, scope=body.scope, scope_id=body.scope_id, kind=body.kind, limit=body.limit
    )
    await _changed(request)
    return json_response(limit_out(rule), status=201)


@admin_endpoint
async def list_limits(request: Request, admin: Admin) -> Response:
    rules = await LimitStore(services(request).database).limits(admin.workspace_id)
    return json_response(LimitListOut(data=[limit_out(rule) for rule in rules]))


async def _find_limit(request: Request, admin: Admin) -> LimitRule:
    wanted = request.path_params["limit_id"]
    for rule in await LimitStore(services(request).database).limits(admin.workspace_id):
        if rule.id == wanted:
            return rule
    raise NotFound(f"No limit '{wanted}' in workspace '{admin.workspace_id}'; GET /admin/limits lists them.")


@admin_endpoint
async def get_limit(request: Request, admin: Admin) -> Response:
    return json_response(limit_out(await _find_limit(request, admin)))


@admin_endpoint
async def delete_limit(request: Request, admin: Admin) -> Response:
    rule = await _find_limit(request, admin)
    await LimitStore(services(request).database).delete(limits, rule.id, workspace_id=admin.workspace_id)
    await _changed(request)
    return json_response(DeletedOut(id=rule.id, deleted=True))


OPERATIONS: tuple[Operation, ...] = (
    Operation("POST", "/budgets", create_budget, "Create a budget", BudgetIn, BudgetOut, status=201),
    Operation("GET", "/budgets", list_budgets, "List budgets with their current windows", answer=BudgetListOut),
    Operation("GET", "/budgets/{budget_id}", get_budget, "Get a budget and its current window", answer=BudgetOut),
    Operation("DELETE", "/budgets/{budget_id}", delete_budget, "Delete a budget", answer=DeletedOut),
    Operation("POST", "/limits", create_limit, "Create a rate or concurrency limit", LimitIn, LimitOut, status=201),
    Operation("GET", "/limits", list_limits, "List rate and concurrency limits", answer=LimitListOut),
    Operation("GET", "/limits/{limit_id}", get_limit, "Get a limit", answer=LimitOut),
    Operation("DELETE", "/limits/{limit_id}", delete_limit, "Delete a limit", answer=DeletedOut),
)

routes: list[BaseRoute] = routes_of(OPERATIONS)
