"""The MCP server: tools and resources over the gateway's governed path, for both transports.

Every tool is a thin typed function: its signature is the input schema, its return model the output schema and
its docstring the description. Services reach it through ``GatewayContext``, the server's lifespan context;
the caller's key and agent context come from the HTTP request's headers, or (stdio, no request) from the
headers the context carries. A model call is an ``Call.internal`` through the same pipeline as
``/v1/chat/completions`` (authentication, agent context, policy, dispatch, cost, log row); a refusal or an
upstream failure is an ``isError`` result naming the gateway's error code, never a protocol error.

Every other tool call is governed the same way: the caller's key authenticates it, its agent context comes from
headers (or the stdio environment) then the tool's own arguments, and it is one log row (endpoint ``mcp_tool``)
that is also its span in the run's trace. The tools call the same services as the HTTP routes (``Runs``, the
ledger, the limiter, ``pay_and_fetch``), so they refuse the same things with the same codes.

    tool                  annotations                   what
    chat                  open world, not read-only      a model call: text, tool calls, usage, cost
    list_models           read-only, idempotent          the models this key's policy allows
    check_budget          read-only, idempotent          every applicable budget: spent, reserved, left, resets
    start_run / end_run   writes (end is idempotent)     a traced unit of an agent's work
    get_run               read-only, idempotent          a run's totals and trace tree
    record_spend          idempotent (idempotency_key)   tool/API spend into the ledger and budgets
    get_spend             read-only, idempotent          ledger entries and totals, margin included
    list_paid_endpoints   read-only, idempotent          what this gateway sells (x402 / MPP)
    invoke_paid_endpoint  destructive, open world        pay from the agent's wallet and fetch

    resource                              what
    alephant://models{?provider}          as list_models (listed as alephant://models)
    alephant://runs/{run_id}              as get_run
    alephant://budgets/{scope}            as check_budget, for one scope or ``all`` (listed as .../all)
    alephant://paid-endpoints{?network}   as list_paid_endpoints (listed as alephant://paid-endpoints)
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import Resource, ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.requests import Request

from finance.money import format_usd, parse_usd
from providers.ingress import dialect
from server import __version__
from server.call import AgentContext, Call, Principal, new_request_id
from server.errors import GatewayError, InvalidRequest, PolicyDenied
from server.ledger import parse_window
from server.limits import LimitsUnavailable
from server.payments.buying import FetchIn, pay_and_fetch
from server.pipeline import Handler
from server.runs import Runs
from server.services import Services
from server.stages import authenticate_request
from server.stages.agent_context import agent_ids, valid_id
from server.stages.policy import principal_allows
from server.storage.ledger import LedgerEntry, LedgerFilter
from server.storage.records import MCP_TOOL_ENDPOINT, LogRow
from server.storage.runs import RunRecord

__all__ = [
    "BUDGETS_URI",
    "MODELS_URI",
    "PAID_ENDPOINTS_URI",
    "RUNS_URI",
    "GatewayContext",
    "Lifespan",
    "build_server",
    "fixed_context",
]

_OPENAI = dialect("openai")
_log = logging.getLogger("alephant.mcp")
_FORWARDED = ("authorization", "alephant-agent-id", "alephant-run-id", "alephant-session-id")
_PROPERTY_PREFIX = "alephant-property-"
MODELS_URI = "alephant://models"
RUNS_URI = "alephant://runs/"
BUDGETS_URI = "alephant://budgets/"
PAID_ENDPOINTS_URI = "alephant://paid-endpoints"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class GatewayContext:
    """What tools reach the gateway through: its services, its pipeline, and default request headers.

    ``headers`` stand in for an HTTP request's when there is none (stdio): ``Authorization`` and the
    ``Alephant-*`` agent context, from the environment.
    """

    services: Services
    pipeline: Handler
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


Ctx = Context[GatewayContext, Any]
Lifespan = Callable[[MCPServer[GatewayContext]], contextlib.AbstractAsyncContextManager[GatewayContext]]


# --- schemas ---------------------------------------------------------------------------------------------------


class ChatMessage(BaseModel):
    """One message of a conversation, in the OpenAI Chat Completions shape."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = Field(
        default=None, description="An assistant's earlier tool calls, as the model returned them."
    )
    tool_call_id: str | None = Field(default=None, description="For role 'tool': the call this result answers.")


class ChatOptions(BaseModel):
    """Sampling and tool options, passed to the model as Chat Completions fields."""

    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = Field(
        default=None, description='Function tools: [{"type": "function", "function": {"name", "parameters"}}].'
    )
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: str = Field(description="The arguments as the model wrote them (JSON text).")


class TokenUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int = Field(description="Part of prompt_tokens read from the provider's prompt cache.")
    reasoning_tokens: int = Field(description="Part of completion_tokens spent on reasoning.")


class ChatResult(BaseModel):
    text: str | None = Field(description="The model's answer; null when it only called tools.")
    tool_calls: list[ToolCall]
    finish_reason: str | None = Field(description="stop, length, tool_calls or content_filter.")
    usage: TokenUsage
    cost_usd: str = Field(description="What the call cost, in US dollars (a decimal string, 9 places).")
    request_id: str = Field(description="The gateway's request id: `alephant logs show <id>` shows its log row.")
    model: str = Field(description="The model that answered, as provider/model.")
    provider: str


class ModelRow(BaseModel):
    id: str = Field(description="The name to pass as `model`.")
    provider: str
    kind: str = Field(description="chat or embeddings.")
    context_window: int | None = None
    max_output_tokens: int | None = None
    alias_of: str | None = Field(default=None, description="For an alias: the provider/model it names.")


class ModelList(BaseModel):
    models: list[ModelRow]


# --- helpers ---------------------------------------------------------------------------------------------------


def _gateway(ctx: Ctx) -> GatewayContext:
    return ctx.request_context.lifespan_context


def _headers(ctx: Ctx) -> dict[str, str]:
    """The caller's key and agent context: the HTTP request's headers, else the context's defaults."""
    request = ctx.request_context.request
    if not isinstance(request, Request):
        return dict(_gateway(ctx).headers)
    return {
        name: value
        for name, value in request.headers.items()
        if name in _FORWARDED or name.startswith(_PROPERTY_PREFIX)
    }


def _allowed_models(ctx: Ctx, provider: str | None = None) -> ModelList:
    services = _gateway(ctx).services
    try:
        principal = authenticate_request(services.keyring, _headers(ctx).get("authorization"))
    except GatewayError as exc:
        raise ToolError(f"{exc.code}: {exc.message}") from None
    agent_id = _headers(ctx).get("alephant-agent-id")

    def allows(qualified: str) -> bool:
        return principal_allows(services.keyring, principal, qualified, agent_id)

    rows = []
    for entry in services.catalog.entries():
        qualified = f"{entry.provider.id}/{entry.model}"
        if (provider is None or entry.provider.id == provider) and allows(qualified):
            info = services.catalog.model_info(entry.provider.id, entry.model)
            rows.append(
                ModelRow(
                    id=qualified,
                    provider=entry.provider.id,
                    kind=entry.endpoint,
                    context_window=info.context_window if info else None,
                    max_output_tokens=info.max_output_tokens if info else None,
                )
            )
    for alias, target in services.settings.aliases.items():
        target_provider = target.partition("/")[0]
        if (provider is None or target_provider == provider) and allows(target):
            rows.append(ModelRow(id=alias, provider=target_provider, kind="chat", alias_of=target))
    return ModelList(models=rows)


def _conversation(prompt: str | None, messages: list[ChatMessage] | None, system: str | None) -> list[dict[str, Any]]:
    if (prompt is None) == (messages is None):
        raise ToolError("invalid_request_error: give either `prompt` (one user message) or `messages`, not both.")
    turns: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    if prompt is not None:
        turns.append({"role": "user", "content": prompt})
    else:
        turns.extend(m.model_dump(exclude_none=True) for m in messages or ())
    return turns


def _chat_result(call: Call, body: bytes) -> ChatResult:
    choice = (orjson.loads(body).get("choices") or [{}])[0]
    message = choice.get("message") or {}
    calls = [
        ToolCall(
            id=item.get("id", ""),
            name=(item.get("function") or {}).get("name", ""),
            arguments=(item.get("function") or {}).get("arguments") or "{}",
        )
        for item in message.get("tool_calls") or ()
    ]
    usage = call.usage
    target = call.target
    assert target is not None  # a reply means the model was resolved
    return ChatResult(
        text=message.get("content"),
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=TokenUsage(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.prompt_tokens + usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        ),
        cost_usd=format_usd(call.cost.nano if call.cost else 0),
        request_id=call.request_id,
        model=target.qualified,
        provider=target.provider.id,
    )


# --- tools -----------------------------------------------------------------------------------------------------

_AgentId = Annotated[str | None, Field(description="Agent id for the log (overrides the Alephant-Agent-Id header).")]
_RunId = Annotated[str | None, Field(description="Run id for the log (overrides the Alephant-Run-Id header).")]
_SessionId = Annotated[
    str | None, Field(description="Session id for the log (overrides the Alephant-Session-Id header).")
]


async def chat(
    ctx: Ctx,
    model: Annotated[str, Field(description="provider/model (e.g. mock/mock-1), a catalog name or an alias.")],
    prompt: Annotated[str | None, Field(description="A single user message; or give `messages`.")] = None,
    messages: Annotated[list[ChatMessage] | None, Field(description="The conversation; or give `prompt`.")] = None,
    system: Annotated[str | None, Field(description="A system message put first.")] = None,
    options: ChatOptions | None = None,
    agent_id: _AgentId = None,
    run_id: _RunId = None,
    session_id: _SessionId = None,
) -> ChatResult:
    """Call a model through the Alephant gateway, governed by this API key's policy.

    Returns the answer text, any tool calls, token usage and the cost in USD. The call is logged with its
    agent, run and session ids; a refused or failed call returns an error naming the gateway's code
    (policy_denied, model_not_found, upstream_error, ...).
    """
    body: dict[str, Any] = {"model": model, "messages": _conversation(prompt, messages, system), "stream": False}
    if options is not None:
        body.update(options.model_dump(exclude_none=True))
    headers = _headers(ctx)
    for name, value in (
        ("alephant-agent-id", agent_id),
        ("alephant-run-id", run_id),
        ("alephant-session-id", session_id),
    ):
        if value is not None:
            headers[name] = value
    call = Call.internal(headers=headers, body=orjson.dumps(body), endpoint="chat", dialect=_OPENAI, path="/mcp")
    try:
        reply = await _gateway(ctx).pipeline(call)
    except GatewayError as exc:
        raise ToolError(f"{exc.code}: {exc.message} (request {call.request_id})") from None
    return _chat_result(call, reply.body)


async def list_models(
    ctx: Ctx,
    provider: Annotated[str | None, Field(description="Only this provider's models (e.g. openai).")] = None,
) -> ModelList:
    """List the models this API key may use: provider/model ids, kind, context window, and aliases."""
    return _allowed_models(ctx, provider)


# --- governed calls that are not model calls ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Caller:
    """The caller of a tool: its key's principal and its agent context (headers or env, then tool arguments)."""

    principal: Principal
    context: AgentContext


def _caller(
    ctx: Ctx, *, agent_id: str | None = None, run_id: str | None = None, session_id: str | None = None
) -> _Caller:
    headers = _headers(ctx)
    services = _gateway(ctx).services
    try:
        principal = authenticate_request(services.keyring, headers.get("authorization"))
        ids: dict[str, str] = agent_ids(headers)
        for field, value in (("agent_id", agent_id), ("run_id", run_id), ("session_id", session_id)):
            if value is not None:
                ids[field] = valid_id(field, value, field=True)
        claimed = ids.get("agent_id")
        if principal.agent_id is not None and claimed not in (None, principal.agent_id):
            raise PolicyDenied(
                f"This key is bound to agent '{principal.agent_id}' and may not act as '{claimed}'.",
                param="agent_id",
            )
    except GatewayError as exc:
        raise ToolError(f"{exc.code}: {exc.message}") from None
    context = AgentContext(
        agent_id=principal.agent_id or ids.get("agent_id"), run_id=ids.get("run_id"), session_id=ids.get("session_id")
    )
    return _Caller(principal, context)


@contextlib.asynccontextmanager
async def _recorded(ctx: Ctx, caller: _Caller, tool: str) -> AsyncIterator[None]:
    """Run a tool as one governed call: a log row (endpoint ``mcp_tool``) that is also its span in the run's
    trace; a ``GatewayError`` becomes a tool error naming its code."""
    started = time.perf_counter()
    created = datetime.now(tz=UTC)
    error: GatewayError | None = None
    try:
        yield
    except GatewayError as exc:
        error = exc
        raise ToolError(f"{exc.code}: {exc.message}") from None
    except ToolError as exc:
        error = GatewayError(str(exc), status=400, code="tool_error")
        raise
    finally:
        principal, context = caller.principal, caller.context
        row = LogRow(
            request_id=new_request_id(),
            created_at=created,
            endpoint=MCP_TOOL_ENDPOINT,
            key_id=principal.key_id,
            workspace_id=principal.workspace_id,
            department_id=principal.department_id,
            agent_id=context.agent_id,
            run_id=context.run_id,
            session_id=context.session_id,
            properties={"mcp_tool": tool},
            status="error" if error else "ok",
            http_status=error.status if error else 200,
            error_code=error.code if error else None,
            error_message=error.message if error else None,
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        try:
            _gateway(ctx).services.log_writer.submit(row)
        except Exception:  # the log never fails a call (as in the record stage)
            _log.exception("MCP tool %s: its log row could not be queued", tool)


# --- budgets -------------------------------------------------------------------------------------------------------


class BudgetRow(BaseModel):
    budget_id: str
    scope: str = Field(description="workspace, department, key, agent or run.")
    scope_value: str = Field(description="The id of the workspace, department, key, agent or run it counts.")
    period: str = Field(description="hourly, daily, weekly, monthly or total.")
    mode: str = Field(description="hard (refuses calls) or soft (alerts only).")
    limit_usd: str
    spent_usd: str
    reserved_usd: str = Field(description="Held by calls in flight.")
    remaining_usd: str
    resets_at: str | None = Field(description="ISO-8601; null for a total budget.")
    fits: bool = Field(description="Whether a call of the estimate fits (soft budgets always fit).")


class BudgetReport(BaseModel):
    estimate_usd: str
    fits: bool = Field(description="Whether a call of the estimate fits every applicable budget.")
    budgets: list[BudgetRow] = Field(description="Every budget that applies to this caller; empty when none.")


_SCOPES = ("workspace", "department", "key", "agent", "run")


async def _budget_report(ctx: Ctx, caller: _Caller, estimate_nano: int, scope: str | None = None) -> BudgetReport:
    try:
        statuses = await _gateway(ctx).services.limiter.check_budget(caller.principal, caller.context, estimate_nano)
    except LimitsUnavailable:
        raise GatewayError(
            "Budgets are unavailable: the gateway cannot reach its limits backend. Retry shortly.",
            status=503,
            code="limits_unavailable",
        ) from None
    rows = [
        BudgetRow(
            budget_id=status.budget_id,
            scope=status.scope,
            scope_value=status.scope_value,
            period=status.period,
            mode=status.mode,
            limit_usd=format_usd(status.limit_nano),
            spent_usd=format_usd(status.spent_nano),
            reserved_usd=format_usd(status.reserved_nano),
            remaining_usd=format_usd(status.remaining_nano),
            resets_at=status.resets_at.isoformat() if status.resets_at else None,
            fits=status.fits,
        )
        for status in statuses
        if scope is None or status.scope == scope
    ]
    return BudgetReport(estimate_usd=format_usd(estimate_nano), fits=all(row.fits for row in rows), budgets=rows)


async def check_budget(
    ctx: Ctx,
    estimate_usd: Annotated[
        Decimal | None, Field(description='What the next call may cost, in USD ("0.05" or 0.05); default 0.')
    ] = None,
    agent_id: _AgentId = None,
    run_id: _RunId = None,
) -> BudgetReport:
    """Check the budgets that govern this caller (workspace, department, key, agent, run): what is spent,
    reserved and remaining in each current period, when each resets, and whether a call costing
    `estimate_usd` would fit. Read-only: it reserves nothing."""
    caller = _caller(ctx, agent_id=agent_id, run_id=run_id)
    async with _recorded(ctx, caller, "check_budget"):
        estimate = _amount(estimate_usd or Decimal(0), "estimate_usd")
        return await _budget_report(ctx, caller, estimate)


def _amount(value: Decimal, field: str) -> int:
    """USD from a tool argument (JSON numbers arrive as their shortest decimal text) to nano-USD, exactly."""
    try:
        return parse_usd(value)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}", param=field) from None


# --- runs ----------------------------------------------------------------------------------------------------------


class RunInfo(BaseModel):
    run_id: str
    status: str = Field(description="running, completed, failed or cancelled.")
    agent_id: str | None
    started_at: str
    ended_at: str | None
    metadata: dict[str, Any]


class RunTrace(BaseModel):
    run_id: str
    status: str = Field(description="running, completed, failed, cancelled, or implicit (only seen in headers).")
    agent_id: str | None
    started_at: str | None
    ended_at: str | None
    requests: int = Field(description="Model calls and tool calls logged under the run.")
    prompt_tokens: int
    completion_tokens: int
    cost_usd: str
    tree: dict[str, Any] = Field(description="The trace: run -> session -> request/tool -> attempt, with totals.")


def _run_info(run: RunRecord) -> RunInfo:
    return RunInfo(
        run_id=run.id,
        status=run.status,
        agent_id=run.agent_id,
        started_at=run.started_at.isoformat(),
        ended_at=run.ended_at.isoformat() if run.ended_at else None,
        metadata=run.metadata,
    )


def _runs(ctx: Ctx) -> Runs:
    return _gateway(ctx).services.runs


async def start_run(
    ctx: Ctx,
    run_id: Annotated[
        str | None, Field(description="Your id for the run (1-128 of A-Z a-z 0-9 . - _ :); default: new.")
    ] = None,
    agent_id: _AgentId = None,
    metadata: Annotated[dict[str, Any] | None, Field(description="Anything to keep with the run (JSON).")] = None,
) -> RunInfo:
    """Start a run: a unit of an agent's work that model calls, tool calls and spend are grouped under. Pass
    its run_id to later calls (or send the Alephant-Run-Id header) so they land in its trace."""
    caller = _caller(ctx, agent_id=agent_id)
    async with _recorded(ctx, caller, "start_run"):
        if run_id is not None:
            valid_id("run_id", run_id, field=True)
        principal = caller.principal
        run = await _runs(ctx).start(
            principal, principal.workspace_id, run_id=run_id, agent_id=caller.context.agent_id, metadata=metadata or {}
        )
    return _run_info(run)


async def end_run(
    ctx: Ctx,
    run_id: Annotated[str, Field(description="The run to end.")],
    status: Annotated[Literal["completed", "failed", "cancelled"], Field(description="How it ended.")] = "completed",
) -> RunInfo:
    """End a run started with start_run. Ending it again keeps its first ending."""
    caller = _caller(ctx, run_id=run_id)
    async with _recorded(ctx, caller, "end_run"):
        run = await _runs(ctx).end(caller.principal.workspace_id, run_id, status=status)
    return _run_info(run)


async def _trace(ctx: Ctx, caller: _Caller, run_id: str) -> RunTrace:
    tree = await _runs(ctx).trace(caller.principal.workspace_id, run_id)
    totals = tree["totals"]
    return RunTrace(
        run_id=run_id,
        status=tree["status"],
        agent_id=tree["agent_id"],
        started_at=tree["started_at"],
        ended_at=tree["ended_at"],
        requests=totals["requests"],
        prompt_tokens=totals["prompt_tokens"],
        completion_tokens=totals["completion_tokens"],
        cost_usd=totals["cost_usd"],
        tree=tree,
    )


async def get_run(ctx: Ctx, run_id: Annotated[str, Field(description="The run's id.")]) -> RunTrace:
    """A run's trace summary: status, requests, tokens and cost, and the full tree (sessions, model calls with
    their attempts, tool calls, spans)."""
    caller = _caller(ctx)
    async with _recorded(ctx, caller, "get_run"):
        valid_id("run_id", run_id, field=True)
        return await _trace(ctx, caller, run_id)


# --- spend ---------------------------------------------------------------------------------------------------------


class SpendEntry(BaseModel):
    id: str
    kind: str
    amount_usd: str
    vendor: str | None
    tool: str | None
    agent_id: str | None
    run_id: str | None
    session_id: str | None
    idempotency_key: str | None
    created_at: str
    replayed: bool = Field(default=False, description="True when this idempotency_key was recorded before.")


class SpendReport(BaseModel):
    entries: list[SpendEntry] = Field(description="The newest entries first.")
    total_spend_usd: str = Field(description="Model cost + tool + payment spend + adjustments in the window.")
    model_cost_usd: str
    tool_spend_usd: str
    payment_spend_usd: str
    revenue_usd: str
    margin_usd: str


def _spend_entry(entry: LedgerEntry, *, replayed: bool = False) -> SpendEntry:
    return SpendEntry(
        id=entry.id,
        kind=entry.kind,
        amount_usd=format_usd(entry.amount_nano),
        vendor=entry.vendor,
        tool=entry.tool,
        agent_id=entry.agent_id,
        run_id=entry.run_id,
        session_id=entry.session_id,
        idempotency_key=entry.idempotency_key,
        created_at=entry.created_at.isoformat(),
        replayed=replayed,
    )


async def record_spend(
    ctx: Ctx,
    amount_usd: Annotated[Decimal, Field(description='What the tool or API call cost, in USD ("0.02" or 0.02).')],
    vendor: Annotated[str, Field(min_length=1, max_length=256, description="Who was paid (e.g. serpapi).")],
    tool: Annotated[str, Field(min_length=1, max_length=256, description="What was used (e.g. web_search).")],
    idempotency_key: Annotated[
        str, Field(min_length=1, max_length=256, description="Unique per spend: a retry with it records nothing new.")
    ],
    description: Annotated[str | None, Field(max_length=4096)] = None,
    agent_id: _AgentId = None,
    run_id: _RunId = None,
    session_id: _SessionId = None,
) -> SpendEntry:
    """Record spend on an external tool or API in the ledger, against this caller's budgets and run. Retrying
    with the same idempotency_key returns the first entry instead of recording twice."""
    caller = _caller(ctx, agent_id=agent_id, run_id=run_id, session_id=session_id)
    async with _recorded(ctx, caller, "record_spend"):
        principal, context = caller.principal, caller.context
        entry, created = await _gateway(ctx).services.ledger.record(
            workspace_id=principal.workspace_id,
            kind="tool_spend",
            amount_nano=_amount(amount_usd, "amount_usd"),
            idempotency_key=idempotency_key,
            attribution={
                "key_id": principal.key_id,
                "department_id": principal.department_id,
                "agent_id": context.agent_id,
                "run_id": context.run_id,
                "session_id": context.session_id,
            },
            vendor=vendor,
            tool=tool,
            description=description,
        )
    return _spend_entry(entry, replayed=not created)


async def get_spend(
    ctx: Ctx,
    agent_id: _AgentId = None,
    run_id: Annotated[str | None, Field(description="Only this run's spend.")] = None,
    session_id: Annotated[str | None, Field(description="Only this session's spend.")] = None,
    since: Annotated[str | None, Field(description="ISO-8601 date or time; default: everything.")] = None,
    limit: Annotated[int, Field(ge=1, le=500, description="Entries to list.")] = 50,
) -> SpendReport:
    """This caller's spend: recent ledger entries (tool spend, payments, adjustments) and totals including
    model cost, for the workspace, or narrowed to an agent, run or session."""
    caller = _caller(ctx, agent_id=agent_id)
    async with _recorded(ctx, caller, "get_spend"):
        for field, value in (("run_id", run_id), ("session_id", session_id)):
            if value is not None:
                valid_id(field, value, field=True)
        start, _ = parse_window(since, None)
        where = LedgerFilter(since=start, agent_id=caller.context.agent_id, run_id=run_id, session_id=session_id)
        entries, totals = await _gateway(ctx).services.ledger.spend(caller.principal.workspace_id, where, limit=limit)
    amounts = totals.amounts()
    return SpendReport(
        entries=[_spend_entry(entry) for entry in entries],
        total_spend_usd=format_usd(amounts["total_spend"]),
        model_cost_usd=format_usd(amounts["model_cost"]),
        tool_spend_usd=format_usd(amounts["tool_spend"]),
        payment_spend_usd=format_usd(amounts["payment_spend"]),
        revenue_usd=format_usd(amounts["revenue"]),
        margin_usd=format_usd(amounts["margin"]),
    )


# --- paid endpoints ------------------------------------------------------------------------------------------------


class PaidEndpointRow(BaseModel):
    id: str
    path: str = Field(description="The gateway path that sells it; pay to call it (x402 or MPP).")
    price_usd: str = Field(description="Per call.")
    network: str = Field(description="CAIP-2 chain id.")
    asset: str = Field(description="Token contract address.")
    pay_to: str
    description: str


class PaidEndpointList(BaseModel):
    endpoints: list[PaidEndpointRow]


class PaidFetch(BaseModel):
    status: int = Field(description="The endpoint's HTTP status.")
    body: str = Field(description="The endpoint's answer (text).")
    content_type: str | None
    paid: bool = Field(description="Whether a payment was made and settled.")
    payment_id: str | None
    amount_usd: str | None
    rail: str | None = Field(description="x402 or mpp.")


def _paid_endpoints(ctx: Ctx, caller: _Caller) -> PaidEndpointList:
    rows = [
        PaidEndpointRow(
            id=endpoint.id,
            path=endpoint.path,
            price_usd=format_usd(endpoint.offer.terms.amount_nano),
            network=endpoint.offer.terms.asset.network,
            asset=endpoint.offer.terms.asset.address,
            pay_to=endpoint.offer.terms.pay_to,
            description=endpoint.offer.description,
        )
        for endpoint in _gateway(ctx).services.payments.endpoints.values()
        if endpoint.workspace_id in (caller.principal.workspace_id, "default")
    ]
    return PaidEndpointList(endpoints=sorted(rows, key=lambda row: row.path))


async def list_paid_endpoints(ctx: Ctx) -> PaidEndpointList:
    """List the paid endpoints this gateway sells: path, price per call, network, asset and recipient."""
    caller = _caller(ctx)
    async with _recorded(ctx, caller, "list_paid_endpoints"):
        return _paid_endpoints(ctx, caller)


async def invoke_paid_endpoint(
    ctx: Ctx,
    url: Annotated[str, Field(description="The endpoint's full URL (http or https).")],
    max_price_usd: Annotated[Decimal, Field(description='The most this call may pay, in USD ("0.05" or 0.05).')],
    method: Annotated[Literal["GET", "POST", "PUT", "PATCH", "DELETE"], Field()] = "GET",
    body: Annotated[str | None, Field(description="The request body (text), if any.")] = None,
    headers: Annotated[dict[str, str] | None, Field(description="Extra request headers.")] = None,
    agent_id: _AgentId = None,
    run_id: _RunId = None,
    session_id: _SessionId = None,
) -> PaidFetch:
    """Call a paid endpoint (x402 or MPP) and pay for it from the agent's wallet, within the wallet's policy
    (allowed origins, max price) and the caller's budgets, which are reserved before anything is signed. The
    payment is recorded in the ledger as payment spend."""
    caller = _caller(ctx, agent_id=agent_id, run_id=run_id, session_id=session_id)
    async with _recorded(ctx, caller, "invoke_paid_endpoint"):
        try:
            request = FetchIn.model_validate(
                {"url": url, "method": method, "headers": headers or {}, "body": body, "max_price": max_price_usd}
            )
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            raise InvalidRequest(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
        answer, payment = await pay_and_fetch(_gateway(ctx).services, caller.principal, caller.context, request)
    return PaidFetch(
        status=answer.status_code,
        body=answer.text,
        content_type=answer.headers.get("content-type"),
        paid=bool(payment and payment["settled"]),
        payment_id=payment["id"] if payment else None,
        amount_usd=payment["amount_usd"] if payment else None,
        rail=payment["rail"] if payment else None,
    )


# --- resources -----------------------------------------------------------------------------------------------------


async def run_resource(ctx: Ctx, run_id: str) -> str:
    """A run's trace (run -> session -> request/tool -> attempt, with totals) as JSON."""
    caller = _caller(ctx)
    async with _recorded(ctx, caller, "resource:runs"):
        valid_id("run_id", run_id, field=True)
        return (await _trace(ctx, caller, run_id)).model_dump_json()


async def budgets_resource(ctx: Ctx, scope: str) -> str:
    """The budgets that govern this caller, as JSON; {scope} is all, workspace, department, key, agent or run."""
    caller = _caller(ctx)
    async with _recorded(ctx, caller, "resource:budgets"):
        if scope != "all" and scope not in _SCOPES:
            raise InvalidRequest(f"Unknown budget scope '{scope}': use all, {', '.join(_SCOPES)}.", param="scope")
        report = await _budget_report(ctx, caller, 0, None if scope == "all" else scope)
        return report.model_dump_json()


async def paid_endpoints_resource(ctx: Ctx, network: str | None = None) -> str:
    """The paid endpoints this gateway sells, as JSON (as list_paid_endpoints); ?network=CAIP-2 narrows it."""
    caller = _caller(ctx)
    async with _recorded(ctx, caller, "resource:paid-endpoints"):
        listed = _paid_endpoints(ctx, caller)
        if network is not None:
            listed = PaidEndpointList(endpoints=[row for row in listed.endpoints if row.network == network])
        return listed.model_dump_json()


# --- resources -------------------------------------------------------------------------------------------------


async def models_resource(ctx: Ctx, provider: str | None = None) -> str:
    """The models this API key may use, as JSON ({"models": [...]}); ?provider=NAME narrows it."""
    return _allowed_models(ctx, provider).model_dump_json(exclude_none=True)


class _Server(MCPServer[GatewayContext]):
    async def list_resources(self) -> list[Resource]:
        # alephant://models depends on the caller's key, and only template reads see the request: it is served
        # by the template alephant://models{?provider} and listed here by its plain URI for discovery.
        listed = Resource(
            uri=MODELS_URI,
            name="models",
            title="Models",
            description=models_resource.__doc__,
            mime_type="application/json",
        )
        paid = Resource(
            uri=PAID_ENDPOINTS_URI,
            name="paid-endpoints",
            title="Paid endpoints",
            description=paid_endpoints_resource.__doc__,
            mime_type="application/json",
        )
        budgets = Resource(
            uri=BUDGETS_URI + "all",
            name="budgets",
            title="Budgets",
            description=budgets_resource.__doc__,
            mime_type="application/json",
        )
        return [*await super().list_resources(), listed, paid, budgets]


def build_server(lifespan: Lifespan) -> MCPServer[GatewayContext]:
    """The Alephant MCP server; ``lifespan`` yields the ``GatewayContext`` its tools use.

    Example (stdio: the services are already open)::

        context = GatewayContext(services=services, pipeline=pipeline, headers={"authorization": "Bearer ..."})
        await build_server(fixed_context(context)).run_stdio_async()
    """
    server = _Server(
        "alephant",
        title="Alephant gateway",
        version=__version__,
        instructions=(
            "Alephant is an LLM gateway. `chat` calls a model under this key's policy and reports its cost; "
            "`list_models` (or the alephant://models resource) says which models the key may use. "
            "`start_run`/`end_run`/`get_run` group work into a traced run; `check_budget` says what is left; "
            "`record_spend`/`get_spend` keep tool spend in the ledger; `list_paid_endpoints` and "
            "`invoke_paid_endpoint` buy from x402/MPP endpoints with the agent's wallet."
        ),
        lifespan=lifespan,
        log_level="WARNING",
    )
    server.add_tool(
        chat,
        title="Call a model",
        description=inspect.getdoc(chat),
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True),
    )
    server.add_tool(
        list_models,
        title="List models",
        description=inspect.getdoc(list_models),
        annotations=ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
    )
    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    for tool, title, hints in (
        (check_budget, "Check budgets", read_only),
        (start_run, "Start a run", writes),
        (end_run, "End a run", ToolAnnotations(read_only_hint=False, idempotent_hint=True, open_world_hint=False)),
        (get_run, "Get a run's trace", read_only),
        (record_spend, "Record tool spend", ToolAnnotations(read_only_hint=False, idempotent_hint=True)),
        (get_spend, "Get spend", read_only),
        (list_paid_endpoints, "List paid endpoints", read_only),
        (
            invoke_paid_endpoint,
            "Pay for and call a paid endpoint",
            ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True),
        ),
    ):
        server.add_tool(tool, title=title, description=inspect.getdoc(tool), annotations=hints)
    server.resource(MODELS_URI + "{?provider}", name="models", title="Models", mime_type="application/json")(
        models_resource
    )
    server.resource(RUNS_URI + "{run_id}", name="run", title="A run's trace", mime_type="application/json")(
        run_resource
    )
    server.resource(BUDGETS_URI + "{scope}", name="budgets", title="Budgets", mime_type="application/json")(
        budgets_resource
    )
    server.resource(
        PAID_ENDPOINTS_URI + "{?network}", name="paid-endpoints", title="Paid endpoints", mime_type="application/json"
    )(paid_endpoints_resource)
    return server


def fixed_context(context: GatewayContext) -> Lifespan:
    """A server lifespan that yields ``context`` (built by whoever owns the services)."""

    @contextlib.asynccontextmanager
    async def lifespan(server: MCPServer[GatewayContext]) -> AsyncIterator[GatewayContext]:
        yield context

    return lifespan
