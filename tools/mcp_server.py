"""The MCP server: tools and resources over the gateway's governed path, for both transports.

Every tool is a thin typed function: its signature is the input schema, its return model the output schema and
its docstring the description. Services reach it through ``GatewayContext``, the server's lifespan context;
the caller's key and agent context come from the HTTP request's headers, or (stdio, no request) from the
headers the context carries. A model call is an ``Call.internal`` through the same pipeline as
``/v1/chat/completions`` (authentication, agent context, policy, dispatch, cost, log row); a refusal or an
upstream failure is an ``isError`` result naming the gateway's error code, never a protocol error.

    tool          annotations                  what
    chat          open world, not read-only     a model call: text, tool calls, usage, cost
    list_models   read-only, idempotent         the models this key may use

    resource                       what
    alephant://models{?provider}   the same list as list_models, as JSON (listed as alephant://models)
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Annotated, Any, Literal

import orjson
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import Resource, ToolAnnotations
from pydantic import BaseModel, Field
from starlette.requests import Request

from finance.money import format_usd
from providers.ingress import dialect
from server import __version__
from server.call import Call
from server.errors import GatewayError
from server.pipeline import Handler
from server.services import Services
from server.stages import authenticate_request, model_allowed

__all__ = ["MODELS_URI", "GatewayContext", "Lifespan", "build_server", "fixed_context"]

_OPENAI = dialect("openai")
_FORWARDED = ("authorization", "alephant-agent-id", "alephant-run-id", "alephant-session-id")
_PROPERTY_PREFIX = "alephant-property-"
MODELS_URI = "alephant://models"


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
    rows = []
    for entry in services.catalog.entries():
        qualified = f"{entry.provider.id}/{entry.model}"
        if (provider is None or entry.provider.id == provider) and model_allowed(principal.models, qualified):
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
        if (provider is None or target_provider == provider) and model_allowed(principal.models, target):
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
        return [*await super().list_resources(), listed]


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
            "`list_models` (or the alephant://models resource) says which models the key may use."
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
    server.resource(MODELS_URI + "{?provider}", name="models", title="Models", mime_type="application/json")(
        models_resource
    )
    return server


def fixed_context(context: GatewayContext) -> Lifespan:
    """A server lifespan that yields ``context`` (built by whoever owns the services)."""

    @contextlib.asynccontextmanager
    async def lifespan(server: MCPServer[GatewayContext]) -> AsyncIterator[GatewayContext]:
        yield context

    return lifespan
