"""``POST /admin/ledger``: entries only an administrator records — adjustments, revenue, payments, savings.

Agents record their own tool spend with ``POST /v1/spend``; corrections go through here as ``adjustment``
entries (the only kind that may be negative), because the ledger is append-only: nothing updates or deletes
an entry. Payments and paid endpoints (issue 9) call ``Ledger.record`` directly.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from finance.ledger import Kind

from ..ledger import entry_json, parse_amount
from ..stages.agent_context import valid_id
from .common import Admin, admin_endpoint, json_response, read_body, services
from .openapi import Operation, routes_of

__all__ = ["OPERATIONS", "routes"]

_Id = Field(default=None, min_length=1, max_length=128)


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    amount_usd: str | None = None
    amount_nano: int | None = Field(default=None, strict=True)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=4096)
    metadata: dict[str, Any] = Field(default_factory=dict)
    vendor: str | None = Field(default=None, max_length=256)
    tool: str | None = Field(default=None, max_length=256)
    endpoint: str | None = Field(default=None, max_length=256)
    department_id: str | None = _Id
    key_id: str | None = _Id
    agent_id: str | None = _Id
    run_id: str | None = _Id
    session_id: str | None = _Id
    request_id: str | None = _Id


_ATTRIBUTION = ("department_id", "key_id", "agent_id", "run_id", "session_id", "request_id")


@admin_endpoint
async def record_entry(request: Request, admin: Admin) -> Response:
    body = await read_body(request, EntryIn)
    amount = parse_amount(body.amount_usd, body.amount_nano, signed=body.kind == "adjustment")
    attribution: dict[str, str | None] = {name: getattr(body, name) for name in _ATTRIBUTION}
    for name, value in attribution.items():
        if value is not None:
            valid_id(name, value, field=True)
    entry, created = await services(request).ledger.record(
        workspace_id=admin.workspace_id,
        kind=body.kind,
        amount_nano=amount,
        idempotency_key=body.idempotency_key,
        attribution=attribution,
        vendor=body.vendor,
        tool=body.tool,
        endpoint=body.endpoint,
        description=body.description,
        metadata=body.metadata,
    )
    return json_response(entry_json(entry), status=201 if created else 200)


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/ledger",
        record_entry,
        "Record a ledger entry (201; 200 when its idempotency_key was recorded before)",
        EntryIn,
        status=201,
    ),
)

routes: list[BaseRoute] = routes_of(OPERATIONS)
