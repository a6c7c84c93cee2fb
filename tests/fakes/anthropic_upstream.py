"""A protocol-faithful fake of the Anthropic Messages API, served on a real localhost socket.

Why a real server: see ``tests.fakes.openai_upstream`` -- the gateway's HTTP client, timeouts and SSE relay
are exactly what the tests must exercise. It runs in a background thread with its own event loop::

    with FakeAnthropic() as fake:
        client = anthropic.Anthropic(base_url=fake.sdk_base_url, api_key=fake.api_key)  # SDK adds /v1/...
        client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=[...])
        # a gateway catalog row takes fake.base_url (".../v1"); the adapter appends "/messages"

Endpoints (Anthropic wire format): ``POST /v1/messages`` (plain, and ``"stream": true`` as named SSE events
``message_start``, ``ping``, ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``, each
written separately) and ``GET /v1/models``. Anything else: 404 ``not_found_error``.

Checks the real API makes (so a wrong translation fails here as it would upstream): the key in ``x-api-key``
(or ``Authorization: Bearer``, as SDK 2.x sends it) -> 401 ``authentication_error``; the ``anthropic-version``
header; ``model``, ``max_tokens``, ``messages`` present; roles only user/assistant (system is top-level);
non-empty content and text blocks; every ``tool_use`` answered by a ``tool_result`` in the next user turn and
no ``tool_result`` without its ``tool_use``; tools with an object ``input_schema``; ``tool_choice`` only with
tools; thinking budgets >= 1024 and < max_tokens; no thinking with a forced tool; ``temperature`` <= 1, not
together with ``top_p`` on Claude 4.x, rejected on Claude 4.7+/5/Fable/Mythos and under API version
2026-10-21 (sampling removed). Unknown model -> 404 ``not_found_error`` ``model: <id>``.

Deterministic behaviour:

* Reply text: ``"fake reply to: <last user text>"`` (first ``MAX_ECHO_WORDS`` words). After tool results:
  ``"tool said: <tool result text>"``. ``max_tokens`` cuts the reply to that many words (stop_reason
  ``max_tokens``); a ``stop_sequences`` entry found in the reply cuts it there (``stop_sequence``).
* Tool calls: with ``tools`` (and ``tool_choice`` not none) when the last user text contains ``"call tool"``
  or ``tool_choice`` forces one: a text block ``"Calling <name>."`` then ``tool_use`` of the first tool (or
  the named one) with input ``{"input": <last user text>}``. ``"call tools"`` calls every tool (parallel
  tool use) unless ``disable_parallel_tool_use``.
* Thinking (``thinking`` enabled or adaptive): a ``thinking`` block ``"Thinking about: <text>"`` with a
  signature, before the answer.
* Usage: ``input_tokens`` = words of system + every text/tool_result + ``PER_MESSAGE_TOKENS`` per message;
  ``output_tokens`` = words of every block written (tool_use: words of ``name + " " + json(input)``).

Fault injection per request, by header or by model-name segment (``<model>-fake-<segments>`` or
``fake-<segments>``; headers win), e.g. ``claude-haiku-4-5-fake-status-429``:

=============================  ===========================  ==============================================
Header                         Model name segment           Effect
=============================  ===========================  ==============================================
``x-fake-status: 529``         ``status-529``               that status with an Anthropic error body (429
                                                            also sends ``retry-after: 1``)
``x-fake-delay: 2.5``          ``delay-2.5``                sleep before answering
``x-fake-close: 1``            ``close``                    drop the connection without a response
``x-fake-close-after: 3``      ``close-after-3``            streaming: drop the connection after 3 events
``x-fake-chunk-delay: 0.1``    ``chunk-delay-0.1``          delay between streamed events
``x-fake-stream-error: 1``     ``stream-error``             streaming: an ``overloaded_error`` event after
                                                            the first text delta, then the stream ends
``x-fake-refusal: 1``          ``refusal``                  stop_reason ``refusal`` after a partial answer
``x-fake-cache-read: 100``     ``cache-read-100``           report that many cache-read input tokens
``x-fake-cache-write: 50``     ``cache-write-50``           report that many cache-write input tokens
=============================  ===========================  ==============================================

Every request is recorded in :attr:`FakeAnthropic.requests` (``RecordedRequest`` from the OpenAI fake).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes._server import FakeServer
from tests.fakes.openai_upstream import RecordedRequest

DEFAULT_API_KEY = "sk-ant-fake-upstream"
DEFAULT_MODELS: tuple[str, ...] = (
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-opus-4-8",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
)
API_VERSIONS = ("2023-01-01", "2023-06-01", "2026-10-21")
MAX_ECHO_WORDS = 32
PER_MESSAGE_TOKENS = 3

_CONTROLS = re.compile(
    r"(?:^|-)(fake(?:-(?:status-\d{3}|delay-[\d.]+|chunk-delay-[\d.]+|close-after-\d+|close|stream-error|refusal"
    r"|cache-read-\d+|cache-write-\d+))+)$"
)
_SEGMENT = re.compile(
    r"-(status|delay|chunk-delay|close-after|close|stream-error|refusal|cache-read|cache-write)(?:-([\d.]+))?"
)
_NO_SAMPLING_MODEL = re.compile(r"claude-(?:fable|mythos)|claude-[a-z]+-(?:[5-9]|4-[7-9])(?!\d)")
_ONE_SAMPLER_MODEL = re.compile(r"claude-[a-z]+-4(?!\d)")
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass(frozen=True)
class Faults:
    status: int | None = None
    delay: float = 0.0
    close: bool = False
    close_after: int | None = None
    chunk_delay: float | None = None
    stream_error: bool = False
    refusal: bool = False
    cache_read: int = 0
    cache_write: int = 0


class _Invalid(Exception):
    """A request the real API refuses; carries the status, error type and message to answer with."""

    def __init__(self, message: str, status: int = 400, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.status, self.kind = message, status, kind


def split_model(model: str) -> tuple[str, str]:
    """(base model, control segments) of a model name; controls are ``""`` when it has none."""
    match = _CONTROLS.search(model)
    if match is None:
        return model, ""
    return model[: match.start()], match.group(1)


def resolve_faults(headers: Mapping[str, str], model: str) -> Faults:
    values = {name: arg or "1" for name, arg in _SEGMENT.findall(split_model(model)[1])}
    for name in ("status", "delay", "close", "close-after", "chunk-delay", "stream-error", "refusal"):
        if f"x-fake-{name}" in headers:
            values[name] = headers[f"x-fake-{name}"].strip()
    for name in ("cache-read", "cache-write"):
        if f"x-fake-{name}" in headers:
            values[name] = headers[f"x-fake-{name}"].strip()
    try:
        return Faults(
            status=int(values["status"]) if "status" in values else None,
            delay=float(values.get("delay", 0)),
            close=values.get("close") in ("1", "true"),
            close_after=int(values["close-after"]) if "close-after" in values else None,
            chunk_delay=float(values["chunk-delay"]) if "chunk-delay" in values else None,
            stream_error=values.get("stream-error") in ("1", "true"),
            refusal=values.get("refusal") in ("1", "true"),
            cache_read=int(values.get("cache-read", 0)),
            cache_write=int(values.get("cache-write", 0)),
        )
    except ValueError as exc:
        raise _Invalid(f"bad x-fake-* control: {exc}") from None


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error shape: ``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": f"req_{uuid.uuid4().hex}"}


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    all_headers = {"request-id": f"req_{uuid.uuid4().hex}", **(headers or {})}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=all_headers)


def _error(status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json(error_body(kind, message), status, headers)


def _words(text: str) -> list[str]:
    return text.split()


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        return _content_text(block.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_block_text(b) for b in content)
    return ""


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def count_input_tokens(body: Mapping[str, Any]) -> int:
    system = body.get("system")
    total = len(_words(_content_text(system))) + PER_MESSAGE_TOKENS if system else 0
    for message in body.get("messages") or ():
        total += len(_words(_content_text(message.get("content")))) + PER_MESSAGE_TOKENS
    return total


def _validate(body: Any, version: str, models: Sequence[str]) -> None:
    """Raise ``_Invalid`` for what the real API refuses (see the module docstring)."""
    if not isinstance(body, dict):
        raise _Invalid("There was an error parsing the body of your request: it is not a JSON object.")
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            raise _Invalid(f"{field}: Field required")
    model = body["model"]
    base, _ = split_model(model) if isinstance(model, str) else ("", "")
    if not isinstance(model, str) or (base and base not in models) or (not base and not model.startswith("fake")):
        raise _Invalid(f"model: {model}", 404, "not_found_error")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        raise _Invalid("max_tokens: Input should be greater than or equal to 1")
    sampling = [name for name in ("temperature", "top_p", "top_k") if name in body]
    if sampling and version >= "2026-10-21":
        raise _Invalid(f"{sampling[0]}: Extra inputs are not permitted")
    if sampling and _NO_SAMPLING_MODEL.search(base):
        raise _Invalid(f"`{sampling[0]}` is deprecated for this model.")
    if "temperature" in body and "top_p" in body and _ONE_SAMPLER_MODEL.search(base):
        raise _Invalid("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
    if isinstance(body.get("temperature"), (int, float)) and not 0 <= body["temperature"] <= 1:
        raise _Invalid("temperature: Input should be less than or equal to 1")
    system = body.get("system")
    text_blocks = isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system)
    if system is not None and not isinstance(system, str) and not text_blocks:
        raise _Invalid("system: Input should be a valid string or a list of text blocks")
    _validate_messages(body["messages"])
    _validate_tools(body)


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _Invalid("messages: at least one message is required")
    pending: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise _Invalid(
                f'messages.{i}.role: Input should be "user" or "assistant" (a system prompt goes in the '
                "top-level `system` parameter)"
            )
        content = message.get("content")
        if content == "" or content == [] or content is None:
            raise _Invalid(f"messages.{i}: all messages must have non-empty content")
        blocks = _blocks(content)
        if any(b.get("type") == "text" and not b.get("text") for b in blocks):
            raise _Invalid(f"messages.{i}: text content blocks must be non-empty")
        results = {str(b.get("tool_use_id")) for b in blocks if b.get("type") == "tool_result"}
        if role == "user":
            if pending - results:
                raise _Invalid(
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(sorted(pending - results))}. Each `tool_use` block must have a corresponding "
                    "`tool_result` block in the next message."
                )
            if results - pending:
                raise _Invalid(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{', '.join(sorted(results - pending))}. Each `tool_result` block must have a corresponding "
                    "`tool_use` block in the previous message."
                )
            if results and blocks[0].get("type") != "tool_result":
                raise _Invalid(f"messages.{i}: `tool_result` blocks must come before any other content")
            pending = set()
        else:
            if results:
                raise _Invalid(f"messages.{i}: `tool_result` blocks are only allowed in user messages")
            pending = {str(b.get("id")) for b in blocks if b.get("type") == "tool_use"}
    if pending:
        raise _Invalid("messages: the final `tool_use` blocks must be followed by `tool_result` blocks")


def _validate_tools(body: dict[str, Any]) -> None:
    tools = body.get("tools")
    for i, tool in enumerate(tools or ()):
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _Invalid(f"tools.{i}.name: Field required")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise _Invalid(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
    choice = body.get("tool_choice")
    if choice is not None:
        if not tools:
            raise _Invalid("tool_choice: tool_choice may only be specified while providing tools")
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            raise _Invalid(
                "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and choice.get("name") not in {t["name"] for t in tools}:
            raise _Invalid(f"tool_choice: tool `{choice.get('name')}` not found in tools")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise _Invalid("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if budget >= body["max_tokens"]:
            raise _Invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
    if _thinks(body) and isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        raise _Invalid("Thinking may not be enabled when tool_choice forces tool use.")


def _thinks(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _answer(body: dict[str, Any], faults: Faults) -> tuple[list[dict[str, Any]], str, str | None]:
    """(content blocks, stop_reason, stop_sequence) the fake answers ``body`` with."""
    last = body["messages"][-1]
    blocks = _blocks(last.get("content")) if last.get("role") == "user" else []
    after_tools = any(b.get("type") == "tool_result" for b in blocks)
    user_text = " ".join(_words(" ".join(_block_text(b) for b in blocks if b.get("type") == "text")))
    out: list[dict[str, Any]] = []
    if _thinks(body):
        thought = "Thinking about: " + " ".join(_words(user_text)[:8])
        signature = "sig_" + hashlib.sha256(thought.encode()).hexdigest()[:32]
        out.append({"type": "thinking", "thinking": thought, "signature": signature})
    calls = [] if after_tools else _tool_calls(body, user_text)
    if calls:
        out.append({"type": "text", "text": f"Calling {calls[0][0]}."})
        for name, arguments in calls:
            call_id = "toolu_" + hashlib.sha256(f"{uuid.uuid4()}{name}".encode()).hexdigest()[:24]
            out.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
        return out, "tool_use", None
    if after_tools:
        said = " ".join(_block_text(b) for b in blocks if b.get("type") == "tool_result")
        text = "tool said: " + " ".join(_words(said)[:MAX_ECHO_WORDS])
    else:
        text = ("fake reply to: " + " ".join(_words(user_text)[:MAX_ECHO_WORDS])).rstrip()
    stop_reason, stop_sequence = "end_turn", None
    for sequence in body.get("stop_sequences") or ():
        at = text.find(sequence)
        if at >= 0 and (stop_sequence is None or at < text.find(stop_sequence)):
            stop_reason, stop_sequence = "stop_sequence", sequence
    if stop_sequence is not None:
        text = text[: text.find(stop_sequence)]
    words = _words(text)
    if faults.refusal:
        words, stop_reason, stop_sequence = words[:2], "refusal", None
    elif len(words) > body["max_tokens"]:
        words, stop_reason, stop_sequence = words[: body["max_tokens"]], "max_tokens", None
    if words:
        out.append({"type": "text", "text": " ".join(words)})
    return out, stop_reason, stop_sequence


def _tool_calls(body: dict[str, Any], text: str) -> list[tuple[str, dict[str, Any]]]:
    tools = [t["name"] for t in body.get("tools") or ()]
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice["type"] == "none":
        return []
    if choice["type"] == "auto" and "call tool" not in text.lower():
        return []
    names = [choice["name"]] if choice["type"] == "tool" else tools
    if "call tools" not in text.lower() or choice.get("disable_parallel_tool_use"):
        names = names[:1]
    return [(name, {"input": text}) for name in names]


def _output_tokens(blocks: list[dict[str, Any]]) -> tuple[int, int]:
    """(output tokens, of which thinking) for the blocks written."""
    total = thinking = 0
    for block in blocks:
        if block["type"] == "tool_use":
            total += len(_words(f"{block['name']} {orjson.dumps(block['input']).decode()}"))
        elif block["type"] == "thinking":
            thinking += len(_words(block["thinking"]))
        else:
            total += len(_words(block["text"]))
    return total + thinking, thinking


class FakeAnthropic(FakeServer[RecordedRequest]):
    """The fake server; use as a context manager. ``base_url`` ends in ``/v1`` (catalog rows);
    ``sdk_base_url`` does not (the anthropic SDK appends ``/v1/messages`` itself)."""

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, models: Iterable[str] = DEFAULT_MODELS, chunk_delay: float = 0.0
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.models: tuple[str, ...] = tuple(models)
        self.chunk_delay = chunk_delay

    @property
    def sdk_base_url(self) -> str:
        return self.root_url

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    @property
    def base_url(self) -> str:
        return self.sdk_base_url + "/v1"

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        headers = {name.lower(): value for name, value in request.headers.items()}
        with self._lock:
            self._requests.append(
                RecordedRequest(request.method, request.path, dict(request.query), headers, raw, body)
            )
        return body

    # ------------------------------------------------------------------ endpoints

    def _auth_error(self, headers: Mapping[str, str]) -> web.Response | None:
        key = headers.get("x-api-key")
        if key is None and headers.get("authorization", "").lower().startswith("bearer "):
            key = headers["authorization"][7:].strip()
        if not key:
            return _error(401, "authentication_error", "x-api-key header is required")
        if key != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        return None

    async def _not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _error(404, "not_found_error", "Not found")

    async def _list_models(self, request: web.Request) -> web.Response:
        await self._record(request)
        refused = self._auth_error({k.lower(): v for k, v in request.headers.items()})
        if refused is not None:
            return refused
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"} for m in self.models
        ]
        return _json({"data": data, "has_more": False, "first_id": self.models[0], "last_id": self.models[-1]})

    async def _count_tokens(self, request: web.Request) -> web.Response:
        """Anthropic's count_tokens: the same count the fake reports as ``input_tokens`` for that body."""
        body = await self._record(request)
        refused = self._auth_error({k.lower(): v for k, v in request.headers.items()})
        if refused is not None:
            return refused
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "invalid_request_error", "messages: Field required")
        if "max_tokens" in body or "stream" in body:
            return _error(400, "invalid_request_error", "max_tokens: Extra inputs are not permitted")
        return _json({"input_tokens": count_input_tokens(body)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        refused = self._auth_error(headers)
        if refused is not None:
            return refused
        version = headers.get("anthropic-version")
        if version is None:
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if version not in API_VERSIONS:
            return _error(400, "invalid_request_error", f"anthropic-version: invalid version '{version}'")
        try:
            model = body.get("model") if isinstance(body, dict) else None
            faults = resolve_faults(headers, model if isinstance(model, str) else "")
            if faults.delay:
                await asyncio.sleep(faults.delay)
            if faults.close:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=204)
            if faults.status is not None:
                kind, message = _ERRORS.get(faults.status, ("api_error", f"Error {faults.status}"))
                retry = {"retry-after": "1"} if faults.status == 429 else None
                return _error(faults.status, kind, f"{message} (injected by FakeAnthropic)", retry)
            _validate(body, version, self.models)
        except _Invalid as exc:
            return _error(exc.status, exc.kind, exc.message)
        blocks, stop_reason, stop_sequence = _answer(body, faults)
        output, thinking = _output_tokens(blocks)
        usage: dict[str, Any] = {
            "input_tokens": count_input_tokens(body),
            "cache_creation_input_tokens": faults.cache_write,
            "cache_read_input_tokens": faults.cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": faults.cache_write, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output,
            "service_tier": "standard",
        }
        if thinking:
            usage["output_tokens_details"] = {"thinking_tokens": thinking}
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }
        if stop_reason == "refusal":
            message["stop_details"] = {"type": "refusal", "category": None, "explanation": None}
        if body.get("stream") is True:
            return await self._stream(request, faults, message)
        return _json(message)

    async def _stream(self, request: web.Request, faults: Faults, message: dict[str, Any]) -> web.StreamResponse:
        events = self._events(message, faults)
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "request-id": f"req_{uuid.uuid4().hex}",
            }
        )
        await response.prepare(request)
        delay = self.chunk_delay if faults.chunk_delay is None else faults.chunk_delay
        try:
            for sent, (name, data) in enumerate(events):
                if faults.close_after is not None and sent >= faults.close_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if sent and delay:
                    await asyncio.sleep(delay)
                await response.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    @staticmethod
    def _events(message: dict[str, Any], faults: Faults) -> list[tuple[str, dict[str, Any]]]:
        """The SSE events of ``message``, in Anthropic's order and shapes."""
        usage = message["usage"]
        start_usage = {**usage, "output_tokens": 1}
        start_usage.pop("output_tokens_details", None)
        head = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
        head.pop("stop_details", None)
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": head})]
        events.append(("ping", {"type": "ping"}))
        for index, block in enumerate(message["content"]):
            kind = block["type"]
            empty = {
                "text": {"type": "text", "text": ""},
                "thinking": {"type": "thinking", "thinking": "", "signature": ""},
            }
            start = empty.get(kind) or {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            events.append(
                ("content_block_start", {"type": "content_block_start", "index": index, "content_block": start})
            )
            if kind == "tool_use":
                arguments = orjson.dumps(block["input"]).decode()
                deltas = [{"type": "input_json_delta", "partial_json": ""}]
                deltas += [
                    {"type": "input_json_delta", "partial_json": arguments[i : i + 8]}
                    for i in range(0, len(arguments), 8)
                ]
            else:
                field = "text" if kind == "text" else "thinking"
                words = block[field].split(" ")
                deltas = [{"type": f"{field}_delta", field: w if i == 0 else f" {w}"} for i, w in enumerate(words)]
                if kind == "thinking":
                    deltas.append({"type": "signature_delta", "signature": block["signature"]})
            for delta in deltas:
                events.append(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
                if faults.stream_error and kind == "text":
                    error = error_body("overloaded_error", "Overloaded")
                    del error["request_id"]
                    events.append(("error", error))
                    return events
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        delta: dict[str, Any] = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
        if "stop_details" in message:
            delta["stop_details"] = message["stop_details"]
        final_usage = {k: v for k, v in usage.items() if k not in ("cache_creation", "service_tier")}
        events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage}))
        events.append(("message_stop", {"type": "message_stop"}))
        return events
