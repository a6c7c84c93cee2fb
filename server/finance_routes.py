"""Finance over HTTP: agents record what they spend outside model calls, and everyone reads the ledger back.

    POST /v1/spend              an agent's paid tool or API call (any valid key; idempotent per key)
    GET  /v1/spend              entries and totals, by agent / run / session / key / department and window
    GET  /v1/finance/summary    totals and margin per group (``group_by``), JSON or CSV

Every read and write is scoped to the caller's workspace; the master key may name one (``?workspace_id=``). A
key bound to an agent records and reads as that agent only. Agent, run and session ids come from the
``Alephant-*`` headers (validated as the pipeline does) or from the body. Amounts go out twice: exact integer
nano-USD and decimal USD text; they come in as decimal text (``"0.25"``, ``"$1.50"``) or integer nano-USD.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from finance.ledger import GROUPS, Group, combine

from .admin.common import json_response, read_body, services
from .call import Principal
from .errors import GatewayError, InvalidRequest, PolicyDenied
from .ledger import entry_json, parse_amount, parse_window, summary_csv, totals_json
from .responses import openai_error_body
from .stages import authenticate_request
from .stages.agent_context import agent_ids, valid_id
from .storage.ledger import LedgerFilter

__all__ = ["routes"]

_MAX_LIMIT = 1000
_FILTERS = ("agent_id", "run_id", "session_id", "key_id", "department_id")
_Text = Field(default=None, min_length=1, max_length=256)


class SpendIn(BaseModel):
    """``POST /v1/spend``: one paid tool or API call. Exactly one of ``amount_usd`` and ``amount_nano``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount_usd: str | None = Field(default=None, description='decimal USD text: "0.25", "$1.50"')
    amount_nano: int | None = Field(default=None, strict=True, ge=0)
    vendor: str = Field(min_length=1, max_length=256)
    tool: str = Field(min_length=1, max_length=256)
    idempotency_key: str = Field(min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=4096)
    metadata: dict[str, Any] = Field(default_factory=dict)
    agent_id: str | None = _Text
    run_id: str | None = _Text
    session_id: str | None = _Text
    request_id: str | None = _Text


def _endpoint(
    handler: Callable[[Request, Principal, str], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate any valid key, resolve the workspace, render ``GatewayError`` as an OpenAI-style error."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            principal = authenticate_request(
                services(request).keyring, request.headers.get("authorization"), request.headers.get("x-api-key")
            )
            return await handler(request, principal, _workspace(request, principal))
        except GatewayError as exc:
            return Response(
                openai_error_body(exc), status_code=exc.status, headers=exc.headers, media_type="application/json"
            )

    return endpoint


def _workspace(request: Request, principal: Principal) -> str:
    wanted = request.query_params.get("workspace_id")
    if wanted is None or wanted == principal.workspace_id:
        return principal.workspace_id
    if principal.is_master:
        return wanted
    raise PolicyDenied(
        f"This key belongs to workspace '{principal.workspace_id}' and may not read or write '{wanted}'.",
        param="workspace_id",
    )


def _agent(principal: Principal, claimed: str | None) -> str | None:
    """A key bound to an agent acts as that agent; naming another one is refused rather than ignored."""
    if principal.agent_id is None:
        return claimed
    if claimed is not None and claimed != principal.agent_id:
        raise PolicyDenied(
            f"This key is bound to agent '{principal.agent_id}' and may not act as '{claimed}'.", param="agent_id"
        )
    return principal.agent_id


@_endpoint
async def record_spend(request: Request, principal: Principal, workspace_id: str) -> Response:
    body = await read_body(request, SpendIn)
    headers = agent_ids(request.headers)
    attribution: dict[str, str | None] = {}
    for field in ("agent_id", "run_id", "session_id", "request_id"):
        given = getattr(body, field)
        if given is not None:
            given = valid_id(field, given, field=True)
        header = headers.get(field)
        if header is not None and given is not None and header != given:
            raise InvalidRequest(
                f"{field} is '{given}' in the body but '{header}' in its header; send one.", param=field
            )
        attribution[field] = header or given
    attribution["agent_id"] = _agent(principal, attribution["agent_id"])
    attribution["key_id"] = principal.key_id
    attribution["department_id"] = principal.department_id
    entry, created = await services(request).ledger.record(
        workspace_id=workspace_id,
        kind="tool_spend",
        amount_nano=parse_amount(body.amount_usd, body.amount_nano),
        idempotency_key=body.idempotency_key,
        attribution=attribution,
        vendor=body.vendor,
        tool=body.tool,
        description=body.description,
        metadata=body.metadata,
    )
    response = json_response(entry_json(entry), status=201 if created else 200)
    if not created:
        response.headers["idempotent-replayed"] = "true"
    return response


def _filter(query: dict[str, str], principal: Principal) -> LedgerFilter:
    """The window (``from``, ``to``) and attribution filters of a query string; see ``ledger.parse_window``."""
    since, until = parse_window(query.get("from"), query.get("to"))
    ids: dict[str, str | None] = {name: valid_id(name, query[name], field=True) for name in _FILTERS if query.get(name)}
    ids["agent_id"] = _agent(principal, ids.get("agent_id"))
    return LedgerFilter(since=since, until=until, **ids)


def _limit(text: str | None) -> int:
    if text is None:
        return 100
    if not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
        raise InvalidRequest(f"limit must be a whole number from 1 to {_MAX_LIMIT}.", param="limit")
    return int(text)


@_endpoint
async def list_spend(request: Request, principal: Principal, workspace_id: str) -> Response:
    query = dict(request.query_params)
    where = _filter(query, principal)
    entries, totals = await services(request).ledger.spend(workspace_id, where, limit=_limit(query.get("limit")))
    return json_response(
        {
            "object": "list",
            "workspace_id": workspace_id,
            "data": [entry_json(e) for e in entries],
            **totals_json(totals),
        }
    )


def _group(text: str | None) -> Group | None:
    if not text:
        return None
    if text not in GROUPS:
        raise InvalidRequest(f"group_by must be one of {', '.join(GROUPS)} (or absent for one row).", param="group_by")
    return text


def _wants_csv(request: Request) -> bool:
    wanted = request.query_params.get("format")
    if wanted not in (None, "json", "csv"):
        raise InvalidRequest("format must be json or csv.", param="format")
    return wanted == "csv" or (wanted is None and "text/csv" in request.headers.get("accept", ""))


@_endpoint
async def summary(request: Request, principal: Principal, workspace_id: str) -> Response:
    query = dict(request.query_params)
    group_by = _group(query.get("group_by"))
    as_csv = _wants_csv(request)
    where = _filter(query, principal)
    rows = await services(request).ledger.summary(workspace_id, group_by=group_by, where=where)
    if as_csv:
        filename = f"alephant-finance-{workspace_id}-{group_by or 'workspace'}.csv"
        return Response(
            summary_csv(group_by, rows),
            media_type="text/csv",
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )
    return json_response(
        {
            "object": "finance.summary",
            "workspace_id": workspace_id,
            "group_by": group_by,
            "from": where.since.isoformat() if where.since else None,
            "to": where.until.isoformat() if where.until else None,
            "currency": "USD",
            "rows": [{"group": key, **totals_json(totals)} for key, totals in rows],
            "total": totals_json(combine(totals for _, totals in rows)),
        }
    )


routes: list[BaseRoute] = [
    Route("/v1/spend", record_spend, methods=["POST"]),
    Route("/v1/spend", list_spend, methods=["GET"]),
    Route("/v1/finance/summary", summary, methods=["GET"]),
]
