"""A protocol-faithful fake of Cohere's v2 HTTP API (Chat and Embed), served on a real localhost socket.

Why a real server: the gateway's Cohere adapter, its transport and its SSE framing must be exercised as they
will run against ``api.cohere.com``; the official ``cohere`` SDK is pointed at the same server to prove the fake
speaks the real protocol. It runs in a background thread with its own event loop::

    with FakeCohere() as fake:
        co = cohere.ClientV2(api_key=fake.api_key, base_url=fake.root_url)   # the SDK appends /v2/chat
        gateway_provider = {"cohere": {"base_url": fake.base_url}}            # .../v2, like the catalog row

Endpoints (Cohere's wire format, same field names and shapes):

* ``POST /v2/chat`` -- a JSON ``V2ChatResponse`` (``id``, ``finish_reason``, ``message`` with ``content`` items,
  ``tool_plan`` and ``tool_calls``, ``usage`` with ``billed_units`` and ``tokens``), or with ``"stream": true``
  typed SSE events, each framed ``event: <type>\\ndata: <json>\\n\\n`` and flushed alone: ``message-start``,
  ``content-start`` / ``content-delta`` / ``content-end``, ``tool-plan-delta``, ``tool-call-start`` /
  ``tool-call-delta`` / ``tool-call-end`` (per call; several calls in a row for parallel calls) and
  ``message-end`` (``finish_reason``, ``usage``).
* ``POST /v2/embed`` -- ``texts`` + ``input_type`` + ``embedding_types`` -> ``{"id", "embeddings": {"float":
  [...]}, "texts", "meta": {"api_version", "billed_units": {"input_tokens"}}, "response_type"}``.
* Anything else: 404 ``{"message": "Not Found"}``.

Deterministic behaviour (so tests can assert exact values):

* The reply is ``"fake reply to: <last user text>"`` (first ``MAX_ECHO_WORDS`` words). After tool results (the
  last message is ``tool``) it is ``"fake answer from tools: <tool contents joined by ' | '>"``. Streamed one
  word per ``content-delta``. ``max_tokens`` cuts it to that many words (``MAX_TOKENS``); a stop sequence found in
  it cuts before the sequence (``STOP_SEQUENCE``).
* Models whose id contains ``reasoning`` think first: a ``thinking`` content item ``"thinking about: <text>"``
  (streamed as ``content-delta`` with ``delta.message.content.thinking``), unless ``thinking.type`` is disabled.
* Tool calls: when ``tools`` are given, ``tool_choice`` is not ``NONE`` and the last user text contains
  ``"call tool"`` (or ``tool_choice`` is ``REQUIRED``), the answer calls the first tool -- every tool (up to 3)
  when the text also contains ``"parallel"`` -- with arguments ``{"input": <last user text>}``, a ``tool_plan``
  of ``"I will call <names>."`` and ``finish_reason: TOOL_CALL``. Call ids are ``<name>_<10 hex>``, derived from
  the request so repeated requests get the same ids. Streamed arguments arrive in 8-character fragments.
* Usage: ``billed_units.input_tokens`` = words of every message's text; ``tokens.input_tokens`` = that + 3 per
  message (Cohere's template tokens, billed to no one); output tokens = words of the reply (tool calls: words of
  ``name + " " + arguments`` for each call). Embed: ``billed_units.input_tokens`` = words of every text.
* Embeddings: ``EMBEDDING_DIMS`` floats (``output_dimension`` when given; embed-v4.0 only), the same vectors as
  the OpenAI fake's ``embedding_for``.

Validation mirrors the documented API and is deliberately strict so adapter mistakes surface as 400s: unknown
top-level fields, roles other than system/user/assistant/tool, an assistant message with neither content nor
tool calls, a tool message without ``tool_call_id``, ``tool_choice`` other than ``REQUIRED``/``NONE`` (or without
tools), ``p`` outside 0.01-0.99, more than 5 stop sequences, a missing ``input_type``. Errors are Cohere's body
``{"id": <uuid>, "message": <text>}``: missing key -> 401 ``no api key supplied``; wrong key -> 401 ``invalid api
token``; unknown model -> 404 ``model '<id>' not found, ...``.

Fault injection, per request, as a header or (for callers that cannot set upstream headers) as segments of a
model name of the form ``fake-<segment>[-<segment>...]`` (any such name is a known chat model). Headers win.

=============================  ========================  =================================================
Header                         Model name segment        Effect
=============================  ========================  =================================================
``x-fake-status: 429``         ``status-429``            that 4xx/5xx status with a Cohere error body
                                                         (429 also sends ``retry-after: 1``)
``x-fake-delay: 2.5``          ``delay-2.5``             sleep that many seconds before answering
``x-fake-close: 1``            ``close``                 drop the connection without any response
``x-fake-close-after: 3``      ``close-after-3``         streaming: drop the connection after 3 events
``x-fake-chunk-delay: .1``     ``chunk-delay-0.1``       seconds between streamed events
``x-fake-finish: ERROR_TOXIC`` ``finish-error-toxic``    force that ``finish_reason`` (segment: lower case,
                                                         ``-`` for ``_``)
``x-fake-stream-error: text``  ``stream-error``          streaming: ``message-end`` carries ``finish_reason:
                                                         ERROR`` and ``delta.error`` (default text
                                                         ``"internal error"``)
=============================  ========================  =================================================

Processing order: record -> authenticate -> delay -> close -> status -> validate and answer. Every request
(including rejected ones) is recorded in :attr:`FakeCohere.requests` as the OpenAI fake's ``RecordedRequest``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes._server import FakeServer
from tests.fakes.openai_upstream import RecordedRequest, embedding_for

DEFAULT_API_KEY = "co-fake-upstream"
CHAT_MODELS = (
    "command-a-03-2025",
    "command-a-plus-05-2026",
    "command-a-reasoning-08-2025",
    "command-a-vision-07-2025",
    "command-r-plus-08-2024",
    "command-r-08-2024",
    "command-r7b-12-2024",
)
EMBED_MODELS = ("embed-v4.0", "embed-english-v3.0", "embed-multilingual-v3.0")
MAX_ECHO_WORDS = 32
PER_MESSAGE_TOKENS = 3
EMBEDDING_DIMS = 8
ARGUMENT_FRAGMENT = 8

_CHAT_FIELDS = frozenset(
    (
        *("model", "messages", "tools", "strict_tools", "documents", "citation_options", "response_format"),
        *("safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty"),
        *("presence_penalty", "k", "p", "logprobs", "tool_choice", "thinking", "priority", "stream"),
    )
)
_EMBED_FIELDS = frozenset(
    (
        *("model", "texts", "images", "inputs", "input_type", "embedding_types", "output_dimension"),
        *("max_tokens", "truncate"),
    )
)
_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
_EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
_SEGMENT = (
    r"-(status|delay|chunk-delay|close-after|finish)-(\d+(?:\.\d+)?|complete|stop-sequence|max-tokens|tool-call|"
    r"error-toxic|error-limit|error|timeout|user-cancel)|-(close|stream-error)"
)
_SEGMENT_RE = re.compile(_SEGMENT)
_CONTROL_RE = re.compile(f"fake(?:{_SEGMENT})+")
_INJECTED = {
    400: "invalid request: injected by FakeCohere",
    401: "invalid api token",
    402: "Please add or update your payment method to continue.",
    404: "model 'injected' not found, make sure the correct model ID was used and that you have access to the model.",
    429: "You are past the per minute request limit, please wait and try again later.",
    498: "blocked input: please adjust your prompt and try again, as it may be a potential violation of our "
    "Usage Guidelines (https://docs.cohere.com/docs/usage-guidelines).",
    500: "internal server error, this has been reported to our developers.",
    503: "service unavailable",
}


@dataclass(frozen=True)
class Faults:
    status: int | None = None
    delay: float = 0.0
    close: bool = False
    close_after: int | None = None
    chunk_delay: float | None = None
    finish: str | None = None
    stream_error: str | None = None


@dataclass
class Answer:
    """What the fake will say: text or tool calls, with its finish reason and usage."""

    text: str = ""
    thinking: str = ""
    tool_plan: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish: str = "COMPLETE"
    usage: dict[str, Any] = field(default_factory=dict)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    body = {"id": str(uuid.uuid4()), "message": message}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=headers)


def _bad(message: str) -> web.Response:
    return _error(400, f"invalid request: {message}")


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _words(text: str) -> list[str]:
    return text.split()


def resolve_faults(headers: Mapping[str, str], model: str | None) -> Faults:
    """Model-name segments, then ``x-fake-*`` headers on top. Raises ``ValueError`` for unreadable values."""
    values: dict[str, str] = {}
    if model and _CONTROL_RE.fullmatch(model):
        for name, arg, flag in _SEGMENT_RE.findall(model):
            values[name or flag] = arg or "1"
    for name in ("status", "delay", "close", "close-after", "chunk-delay", "finish", "stream-error"):
        if (value := headers.get(f"x-fake-{name}")) is not None:
            values[name] = value.strip()
    status = int(values["status"]) if "status" in values else None
    if status is not None and not 400 <= status <= 599:
        raise ValueError(f"x-fake-status must be 4xx or 5xx, got {status}")
    finish = values.get("finish")
    stream_error = values.get("stream-error")
    return Faults(
        status=status,
        delay=float(values.get("delay", 0)),
        close=values.get("close", "") in ("1", "true", "yes"),
        close_after=int(values["close-after"]) if "close-after" in values else None,
        chunk_delay=float(values["chunk-delay"]) if "chunk-delay" in values else None,
        finish=finish.upper().replace("-", "_") if finish else None,
        stream_error=("internal error" if stream_error == "1" else stream_error) if stream_error else None,
    )


def _validate_message(index: int, message: object) -> str | None:
    """The reason a v2 chat message is invalid, or None."""
    if not isinstance(message, dict):
        return f"messages[{index}] must be an object"
    role = message.get("role")
    if role not in ("system", "user", "assistant", "tool"):
        return f"messages[{index}].role must be one of system, user, assistant, tool; got {role!r}"
    content = message.get("content")
    if role in ("system", "user", "tool") and not isinstance(content, str | list):
        return f"messages[{index}].content is required"
    if isinstance(content, list):
        allowed = {"user": ("text", "image_url"), "tool": ("text", "document")}.get(str(role), ("text",))
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in allowed:
                return f"messages[{index}].content items must have a type in {allowed}"
            if part["type"] == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
                return f"messages[{index}].content image_url must have a url"
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        return f"messages[{index}].tool_call_id is required for tool messages"
    if role == "assistant":
        calls = message.get("tool_calls")
        if content is None and not calls:
            return f"messages[{index}]: an assistant message needs content or tool_calls"
        for call in calls or ():
            function = call.get("function") if isinstance(call, dict) else None
            if (
                not isinstance(function, dict)
                or not isinstance(call.get("id"), str)
                or not isinstance(function.get("name"), str)
                or not isinstance(function.get("arguments"), str)
            ):
                return f"messages[{index}].tool_calls items need id, function.name and function.arguments (a string)"
    return None


def validate_chat(body: Mapping[str, Any]) -> str | None:
    """The reason a v2 chat request is invalid (Cohere's documented constraints), or None."""
    unknown = sorted(set(body) - _CHAT_FIELDS)
    if unknown:
        return f"unknown field {unknown[0]!r}"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty array"
    for index, message in enumerate(messages):
        if (reason := _validate_message(index, message)) is not None:
            return reason
    tools = body.get("tools")
    for tool in tools or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            return "tools items must be {type: function, function: {name, parameters}}"
        if not isinstance(function.get("parameters"), dict):
            return f"tool {function.get('name')!r} needs parameters (a JSON schema object)"
    choice = body.get("tool_choice")
    if choice is not None and (choice not in ("REQUIRED", "NONE") or not tools):
        return "tool_choice must be REQUIRED or NONE and needs tools"
    p = body.get("p")
    if p is not None and not (isinstance(p, int | float) and 0.01 <= p <= 0.99):
        return "p must be between 0.01 and 0.99"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "max_tokens must be a positive integer"
    stops = body.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        return "stop_sequences must be an array of at most 5 strings"
    response_format = body.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict) or response_format.get("type") not in ("text", "json_object")
    ):
        return "response_format.type must be text or json_object"
    return None


def _usage(input_words: int, messages: int, output_words: int) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": input_words, "output_tokens": output_words},
        "tokens": {"input_tokens": input_words + PER_MESSAGE_TOKENS * messages, "output_tokens": output_words},
    }


def answer_for(body: Mapping[str, Any], faults: Faults = Faults()) -> Answer:
    """The fake's deterministic answer to a valid chat request (rules in the module docstring)."""
    messages: Sequence[Mapping[str, Any]] = body["messages"]
    input_words = sum(len(_words(_text(m.get("content")))) for m in messages)
    user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    echo = " ".join(_words(user)[:MAX_ECHO_WORDS])
    answer = Answer()
    tools = [t["function"]["name"] for t in body.get("tools") or ()]
    choice = body.get("tool_choice")
    wants_tool = choice == "REQUIRED" or "call tool" in user.lower()
    if tools and choice != "NONE" and wants_tool and messages[-1].get("role") != "tool":
        names = tools[:3] if "parallel" in user.lower() else tools[:1]
        arguments = orjson.dumps({"input": user}).decode()
        seed = orjson.dumps(body["messages"])
        answer.tool_calls = [
            {
                "id": f"{name}_{hashlib.sha256(seed + name.encode()).hexdigest()[:10]}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for name in names
        ]
        answer.tool_plan = f"I will call {', '.join(names)}."
        answer.finish = "TOOL_CALL"
        output = sum(len(_words(f"{name} {arguments}")) for name in names)
    else:
        if messages[-1].get("role") == "tool":
            results = [_text(m.get("content")) for m in messages if m.get("role") == "tool"]
            words = _words("fake answer from tools: " + " | ".join(results))
        else:
            words = _words(f"fake reply to: {echo}")
        limit = body.get("max_tokens")
        if isinstance(limit, int) and limit < len(words):
            words, answer.finish = words[:limit], "MAX_TOKENS"
        answer.text = " ".join(words)
        for stop in body.get("stop_sequences") or ():
            if stop and stop in answer.text:
                answer.text, answer.finish = answer.text[: answer.text.index(stop)], "STOP_SEQUENCE"
        thinking = body.get("thinking") or {}
        if "reasoning" in str(body.get("model")) and thinking.get("type") != "disabled":
            answer.thinking = f"thinking about: {echo}"
        output = len(_words(answer.text))
    if faults.finish:
        answer.finish = faults.finish
    answer.usage = _usage(input_words, len(messages), output)
    return answer


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def stream_events(answer: Answer, *, response_id: str, error: str | None = None) -> list[bytes]:
    """The SSE events Cohere sends for ``answer``, in order, already framed."""
    events: list[dict[str, Any]] = [
        {
            "id": response_id,
            "type": "message-start",
            "delta": {
                "message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
            },
        }
    ]
    blocks = [("thinking", answer.thinking)] if answer.thinking else []
    if answer.text or not answer.tool_calls:
        blocks.append(("text", answer.text))
    index = 0
    for kind, text in blocks:
        start = {"type": kind, kind: ""}
        events.append({"type": "content-start", "index": index, "delta": {"message": {"content": start}}})
        for i, word in enumerate(_words(text)):
            piece = word if i == 0 else f" {word}"
            events.append({"type": "content-delta", "index": index, "delta": {"message": {"content": {kind: piece}}}})
        events.append({"type": "content-end", "index": index})
        index += 1
    for i, word in enumerate(_words(answer.tool_plan)):
        events.append({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": word if i == 0 else f" {word}"}}})
    for call in answer.tool_calls:
        opened = {"id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}
        events.append({"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": opened}}})
        arguments = call["function"]["arguments"]
        for at in range(0, len(arguments), ARGUMENT_FRAGMENT):
            fragment = {"function": {"arguments": arguments[at : at + ARGUMENT_FRAGMENT]}}
            events.append({"type": "tool-call-delta", "index": index, "delta": {"message": {"tool_calls": fragment}}})
        events.append({"type": "tool-call-end", "index": index})
        index += 1
    end: dict[str, Any] = {"finish_reason": answer.finish, "usage": answer.usage}
    if error is not None:
        end = {"error": error, "finish_reason": "ERROR", "usage": answer.usage}
    events.append({"id": response_id, "type": "message-end", "delta": end})
    return [_sse(event) for event in events]


class FakeCohere(FakeServer[RecordedRequest]):
    """The fake server; use as a context manager (or ``start()`` / ``stop()``).

    ``base_url`` (``http://127.0.0.1:PORT/v2``) is what a gateway provider row takes; ``root_url`` is what the
    ``cohere`` SDK takes as ``base_url`` (it appends ``/v2/chat`` itself).
    """

    def __init__(
        self, *, api_key: str = DEFAULT_API_KEY, chunk_delay: float = 0.0, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_key = api_key
        self.chunk_delay = chunk_delay

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/chat", self._chat)
        app.router.add_post("/v2/embed", self._embed)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    @property
    def base_url(self) -> str:
        return self.root_url + "/v2"

    # ------------------------------------------------------------------ handlers

    async def _prelude(self, request: web.Request) -> tuple[dict[str, Any], Faults] | web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        recorded = RecordedRequest(request.method, request.path, dict(request.query), headers, raw, body)
        with self._lock:
            self._requests.append(recorded)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "no api key supplied")
        if token.strip() != self.api_key:
            return _error(401, "invalid api token")
        if not isinstance(body, dict):
            return _bad("the body must be a JSON object")
        model = body.get("model")
        try:
            faults = resolve_faults(headers, model if isinstance(model, str) else None)
        except ValueError as exc:
            return _bad(str(exc))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.close:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)  # never reaches the client
        if faults.status is not None:
            retry = {"retry-after": "1"} if faults.status == 429 else None
            return _error(faults.status, _INJECTED.get(faults.status, f"error {faults.status}"), retry)
        if not isinstance(model, str) or not model:
            return _bad("model must be specified")
        return body, faults

    @staticmethod
    def _model_not_found(model: str) -> web.Response:
        hint = "make sure the correct model ID was used and that you have access to the model."
        return _error(404, f"model '{model}' not found, {hint}")

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return _error(404, "Not Found")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        prelude = await self._prelude(request)
        if not isinstance(prelude, tuple):
            return prelude
        body, faults = prelude
        if body["model"] not in CHAT_MODELS and not _CONTROL_RE.fullmatch(body["model"]):
            return self._model_not_found(body["model"])
        if (reason := validate_chat(body)) is not None:
            return _bad(reason)
        answer = answer_for(body, faults)
        response_id = str(uuid.uuid4())
        if body.get("stream") is True:
            return await self._stream(
                request, faults, stream_events(answer, response_id=response_id, error=faults.stream_error)
            )
        message: dict[str, Any] = {"role": "assistant"}
        if answer.tool_calls:
            message.update(tool_plan=answer.tool_plan, tool_calls=answer.tool_calls)
        else:
            content = [{"type": "thinking", "thinking": answer.thinking}] if answer.thinking else []
            message["content"] = [*content, {"type": "text", "text": answer.text}]
        data = {"id": response_id, "message": message, "finish_reason": answer.finish, "usage": answer.usage}
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def _stream(self, request: web.Request, faults: Faults, events: list[bytes]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
        await response.prepare(request)
        delay = self.chunk_delay if faults.chunk_delay is None else faults.chunk_delay
        try:
            for sent, event in enumerate(events):
                if faults.close_after is not None and sent >= faults.close_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if sent and delay:
                    await asyncio.sleep(delay)
                await response.write(event)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _embed(self, request: web.Request) -> web.StreamResponse:
        prelude = await self._prelude(request)
        if not isinstance(prelude, tuple):
            return prelude
        body, _ = prelude
        model = body["model"]
        if model not in EMBED_MODELS:
            if model in CHAT_MODELS:
                return _bad(f"model '{model}' does not support embed")
            return self._model_not_found(model)
        unknown = sorted(set(body) - _EMBED_FIELDS)
        texts = body.get("texts")
        types = body.get("embedding_types") or ["float"]
        dims = body.get("output_dimension")
        if unknown:
            return _bad(f"unknown field {unknown[0]!r}")
        if body.get("input_type") not in _INPUT_TYPES:
            return _bad(f"input_type must be one of {', '.join(_INPUT_TYPES)}")
        if not isinstance(texts, list) or not texts or len(texts) > 96 or not all(isinstance(t, str) for t in texts):
            return _bad("texts must be an array of 1 to 96 strings")
        if not isinstance(types, list) or not all(t in _EMBEDDING_TYPES for t in types):
            return _bad(f"embedding_types items must be in {', '.join(_EMBEDDING_TYPES)}")
        if dims is not None and (model != "embed-v4.0" or dims not in (256, 512, 1024, 1536)):
            return _bad("output_dimension is only supported by embed-v4.0, as 256, 512, 1024 or 1536")
        size = dims or EMBEDDING_DIMS
        vectors = [embedding_for(text, model=model, dims=size) for text in texts]
        embeddings: dict[str, Any] = {"float": vectors} if "float" in types else {}
        data = {
            "id": str(uuid.uuid4()),
            "embeddings": embeddings,
            "texts": texts,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"input_tokens": sum(len(_words(t)) for t in texts)},
            },
            "response_type": "embeddings_by_type",
        }
        return web.Response(body=orjson.dumps(data), content_type="application/json")
