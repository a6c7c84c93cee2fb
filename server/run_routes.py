"""Runs, traces and log search over HTTP (``/v1/runs*``, ``/v1/logs``, archived bodies at
``/v1/logs/{request_id}/body``), and Prometheus ``/metrics``.

Any valid key may use them; every read and write is scoped to the key's workspace, so a run or log row of
another workspace is a 404 or absent, never shown. The master key acts on ``default`` or on the workspace named
by ``?workspace_id=``. Lists are keyset pages: pass ``next_cursor`` back as ``cursor`` for the next one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from finance.money import to_nano

from .admin.common import json_response, read_body
from .call import Principal
from .errors import GatewayError, InvalidRequest, NotFound, PolicyDenied
from .metrics import CONTENT_TYPE
from .responses import openai_error_body
from .runs import new_id
from .services import Services
from .stages import authenticate_request
from .stages.agent_context import _ID, _PROPERTY_NAME
from .storage import LogQuery
from .storage.log_search import LogFilter, LogSearch
from .storage.runs import RUN_STATUSES, RunStore, SpanRecord
from .traces import log_json, run_json, summary_json

__all__ = ["routes"]

ID_PATTERN = f"^{_ID.pattern}$"  # the same ids as the Alephant-*-Id headers accept
MAX_JSON_BYTES = 16 * 1024
_LOG_PARAMS = frozenset(
    {"key_id", "agent_id", "run_id", "session_id", "model", "provider", "status", "from", "to", "limit", "cursor"}
)
_RUN_PARAMS = frozenset({"agent_id", "status", "from", "to", "limit", "cursor"})
_HTTP_STATUS = re.compile(r"[1-5][0-9][0-9]")
_USD = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    workspace_id: str
    services: Services


def _caller(request: Request) -> Caller:
    services: Services = request.app.state.services
    principal = authenticate_request(
        services.keyring, request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    wanted = request.query_params.get("workspace_id")
    if wanted is None or wanted == principal.workspace_id:
        return Caller(principal, principal.workspace_id, services)
    if not principal.is_master:
        raise PolicyDenied(
            f"This key belongs to workspace '{principal.workspace_id}' and may not read '{wanted}'.",
            param="workspace_id",
        )
    return Caller(principal, wanted, services)


def _endpoint(handler: Callable[[Request, Caller], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate and scope the caller, run ``handler``, and render a ``GatewayError`` in OpenAI's format."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, _caller(request))
        except GatewayError as exc:
            headers = dict(exc.headers)
            if exc.status == 401:
                headers["www-authenticate"] = 'Bearer realm="alephant"'
            return Response(
                openai_error_body(exc), status_code=exc.status, headers=headers, media_type="application/json"
            )

    return endpoint


# --- query parameters ----------------------------------------------------------------------------------------


def _no_unknown(request: Request, known: frozenset[str], *, properties: bool = False) -> None:
    for name in request.query_params:
        if name in known or name == "workspace_id" or (properties and name.startswith("property.")):
            continue
        expected = ", ".join(sorted(known)) + (", property.NAME" if properties else "")
        raise InvalidRequest(f"Unknown query parameter '{name}'; expected one of: {expected}.", param=name)


def _time(request: Request, name: str) -> datetime | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"Query parameter '{name}' must be an ISO 8601 time such as 2026-11-26T12:00:00Z, got {text!r}.",
            param=name,
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _limit(request: Request, default: int, maximum: int) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise InvalidRequest(f"Query parameter 'limit' must be a whole number from 1 to {maximum}.", param="limit")
    return int(text)


def _id_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and not _ID.fullmatch(value):
        raise InvalidRequest(
            f"Query parameter '{name}' is invalid: use 1-128 ASCII letters, digits or '.', '-', '_', ':'.", param=name
        )
    return value


def _encode_cursor(at: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([at.isoformat(), key])).decode().rstrip("=")


def _decode_cursor(request: Request) -> tuple[datetime, str] | None:
    text = request.query_params.get("cursor")
    if text is None:
        return None
    try:
        at, key = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return datetime.fromisoformat(at), str(key)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidRequest(
            "Query parameter 'cursor' is invalid; pass the next_cursor of the previous page unchanged.",
            param="cursor",
        ) from None


def _bounded_json(value: dict[str, Any], field: str) -> dict[str, Any]:
    if len(orjson.dumps(value)) > MAX_JSON_BYTES:
        raise InvalidRequest(f"'{field}' is too large: at most {MAX_JSON_BYTES} bytes of JSON.", param=field)
    return value


# --- runs ----------------------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunIn(_Body):
    run_id: str | None = Field(default=None, pattern=ID_PATTERN, description="your id; generated when absent")
    agent_id: str | None = Field(default=None, pattern=ID_PATTERN)
    metadata: dict[str, Any] = Field(default_factory=dict)


class RunEndIn(_Body):
    status: Literal["completed", "failed", "cancelled"] = "completed"


class SpanIn(_Body):
    id: str | None = Field(default=None, pattern=ID_PATTERN, description="your id; generated when absent")
    kind: Literal["tool", "payment", "custom"]
    name: str = Field(min_length=1, max_length=256)
    started_at: datetime
    ended_at: datetime | None = None
    status: Literal["ok", "error"] = "ok"
    parent_id: str | None = Field(default=None, pattern=ID_PATTERN, description="a span or request id")
    session_id: str | None = Field(default=None, pattern=ID_PATTERN)
    request_id: str | None = Field(default=None, pattern=ID_PATTERN)
    cost_usd: str | None = Field(default=None, pattern=_USD, description="decimal USD as text, e.g. '0.0021'")
    attributes: dict[str, Any] = Field(default_factory=dict)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@_endpoint
async def start_run(request: Request, caller: Caller) -> Response:
    body = await read_body(request, RunIn)
    run = await caller.services.runs.start(
        caller.principal,
        caller.workspace_id,
        run_id=body.run_id,
        agent_id=body.agent_id,
        metadata=_bounded_json(body.metadata, "metadata"),
    )
    return json_response(run_json(run), status=201)


@_endpoint
async def end_run(request: Request, caller: Caller) -> Response:
    body = await read_body(request, RunEndIn)
    run = await caller.services.runs.end(caller.workspace_id, request.path_params["run_id"], status=body.status)
    return json_response(run_json(run))


@_endpoint
async def get_run(request: Request, caller: Caller) -> Response:
    return json_response(await caller.services.runs.trace(caller.workspace_id, request.path_params["run_id"]))


@_endpoint
async def list_runs(request: Request, caller: Caller) -> Response:
    _no_unknown(request, _RUN_PARAMS)
    status = request.query_params.get("status")
    if status is not None and status not in RUN_STATUSES:
        raise InvalidRequest(f"Query parameter 'status' must be one of {', '.join(RUN_STATUSES)}.", param="status")
    limit = _limit(request, 50, 500)
    await caller.services.log_writer.sync()  # a run's summary counts its request-log rows
    found = await RunStore(caller.services.database).list(
        caller.workspace_id,
        agent_id=_id_param(request, "agent_id"),
        status=status,
        since=_time(request, "from"),
        until=_time(request, "to"),
        after=_decode_cursor(request),
        limit=limit,
    )
    cursor = _encode_cursor(found[-1].started_at, found[-1].id) if len(found) == limit else None
    return json_response({"object": "list", "data": [summary_json(s) for s in found], "next_cursor": cursor})


@_endpoint
async def add_span(request: Request, caller: Caller) -> Response:
    body = await read_body(request, SpanIn)
    run_id = request.path_params["run_id"]
    started = _utc(body.started_at)
    ended = _utc(body.ended_at) if body.ended_at is not None else None
    if ended is not None and ended < started:
        raise InvalidRequest("ended_at is before started_at.", param="ended_at")
    span = SpanRecord(
        id=body.id or new_id("spn"),
        workspace_id=caller.workspace_id,
        run_id=run_id,
        kind=body.kind,
        name=body.name,
        started_at=started,
        ended_at=ended,
        status=body.status,
        parent_id=body.parent_id,
        session_id=body.session_id,
        request_id=body.request_id,
        cost_nano=to_nano(body.cost_usd) if body.cost_usd is not None else 0,
        attributes=_bounded_json(body.attributes, "attributes"),
    )
    await caller.services.runs.add_span(span)
    return json_response(dataclasses.asdict(span), status=201)


# --- logs ----------------------------------------------------------------------------------------------------


def _log_filter(request: Request, workspace_id: str) -> LogFilter:
    _no_unknown(request, _LOG_PARAMS, properties=True)
    params = request.query_params
    status = params.get("status")
    http_status: int | None = None
    if status is not None and _HTTP_STATUS.fullmatch(status):
        http_status, status = int(status), None
    elif status is not None and status not in ("ok", "error", "client_disconnected"):
        raise InvalidRequest(
            "Query parameter 'status' must be ok, error, client_disconnected or an HTTP status such as 429.",
            param="status",
        )
    properties = {}
    for name, value in params.items():
        if name.startswith("property."):
            key = name.removeprefix("property.")
            if not _PROPERTY_NAME.fullmatch(key):
                raise InvalidRequest(
                    f"Query parameter '{name}' names an invalid property: use 1-64 letters, digits, '-' or '_'.",
                    param=name,
                )
            properties[key.lower()] = value  # header names, and so stored property names, are lowercase
    return LogFilter(
        workspace_id=workspace_id,
        key_id=params.get("key_id"),
        agent_id=_id_param(request, "agent_id"),
        run_id=_id_param(request, "run_id"),
        session_id=_id_param(request, "session_id"),
        model=params.get("model"),
        provider=params.get("provider"),
        status=status,
        http_status=http_status,
        since=_time(request, "from"),
        until=_time(request, "to"),
        properties=properties,
    )


@_endpoint
async def search_logs(request: Request, caller: Caller) -> Response:
    where = _log_filter(request, caller.workspace_id)
    limit = _limit(request, 100, 1000)
    await caller.services.log_writer.sync()  # read-your-writes on this replica
    rows = await LogSearch(caller.services.database).search(where, limit=limit, after=_decode_cursor(request))
    cursor = _encode_cursor(rows[-1].created_at, rows[-1].request_id) if len(rows) == limit else None
    return json_response({"object": "list", "data": [log_json(row) for row in rows], "next_cursor": cursor})


@_endpoint
async def get_log_body(request: Request, caller: Caller) -> Response:
    """A request's archived bodies (the JSON object ``server.telemetry.archive`` wrote), in the caller's workspace."""
    request_id = request.path_params["request_id"]
    services = caller.services
    await services.log_writer.sync()  # read-your-writes: the row of a call that just answered
    row = await LogQuery(services.database).get(request_id)
    if row is None or row.workspace_id != caller.workspace_id:
        raise NotFound(f"No request '{request_id}' in this workspace.", code="request_not_found")
    archiver = services.telemetry.archiver
    if row.body_ref is None or archiver is None:
        raise NotFound(
            f"Request '{request_id}' has no archived bodies: archiving is off for its workspace (archive.workspaces) "
            "or was off when it ran.",
            code="body_not_archived",
        )
    document = await asyncio.to_thread(archiver.read, row.body_ref)
    if document is None:
        raise NotFound(
            f"The bodies of request '{request_id}' are not in the archive (yet): they are written a moment after "
            "the call, or their write failed (the gateway's log says so). Retry shortly.",
            code="body_not_found",
        )
    return Response(document, media_type="application/json")


async def metrics(request: Request) -> Response:
    """Prometheus text format; aggregates only (no keys, ids or bodies), so it is served without a key."""
    services: Services = request.app.state.services
    body = await run_in_threadpool(services.metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE)


routes: list[BaseRoute] = [
    Route("/v1/runs", start_run, methods=["POST"]),
    Route("/v1/runs", list_runs, methods=["GET"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}/end", end_run, methods=["POST"]),
    Route("/v1/runs/{run_id}/spans", add_span, methods=["POST"]),
    Route("/v1/logs", search_logs, methods=["GET"]),
    Route("/v1/logs/{request_id}/body", get_log_body, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
