"""A protocol-faithful fake of Ollama's native HTTP API, served on a real localhost socket.

It reuses :class:`~tests.fakes.openai_upstream.FakeOpenAI`'s server machinery (background thread, socket,
request recording, fault controls); only the routes and the wire format differ::

    with FakeOllama() as fake:
        client = ollama.Client(host=fake.base_url)
        client.chat(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
        assert fake.last_request.json["stream"] is False

Endpoints (Ollama's field names and shapes):

* ``POST /api/chat`` -- ``stream`` defaults to true, as on a real server: NDJSON (``application/x-ndjson``),
  one object per line, each flushed alone, the last with ``done: true``, ``done_reason`` and the counts
  (``prompt_eval_count``, ``eval_count``, durations). ``stream: false`` answers one object. An empty
  ``messages`` list answers ``done_reason: "load"``.
* ``POST /api/embed`` -- ``input`` string or list of strings; ``dimensions``; ``prompt_eval_count``.
* ``GET /api/tags``, ``GET /api/version``.
* Anything else: 404 ``404 page not found`` (text), like Ollama's Go router.

Deterministic behaviour:

* Reply text is :func:`~tests.fakes.openai_upstream.reply_for` (``"fake reply to: <last user text>"``), one
  word per stream line; ``options.num_predict`` cuts it to that many words (``done_reason: "length"``).
  ``format`` (``"json"`` or a schema) makes the reply ``{"reply": "<text>"}``.
* ``think: true`` (or a level) adds ``message.thinking`` = ``"thinking about: <last user text>"``, streamed
  word by word before the content.
* When ``tools`` are given and the last message is a user message containing ``"call tool"``, the answer is a
  call of the first tool with arguments ``{"input": <last user text>}``; ``"call all tools"`` calls every tool
  (parallel calls), all in one message chunk, as Ollama sends them. Calls carry ``function.index`` and no id.
* When the last message is a ``tool`` message, the reply is ``"fake reply to tool <tool_name>: <content>"``.
* ``"fail midway"`` in the last user text streams two content lines and then an ``{"error": ...}`` line.
* ``prompt_eval_count`` = words of every message + 3 per message; ``eval_count`` = words of the thinking and
  the reply (for tool calls: words of ``name + " " + arguments`` per call). Embedding tokens = words.

Errors are ``{"error": "<message>"}``: unknown model -> 404 ``model "x" not found, try pulling it first``;
bad JSON or fields -> 400; with ``api_key`` set (ollama.com style) a missing/wrong bearer -> 401.

Fault injection: the same headers and model-name segments as the OpenAI fake (``x-fake-status: 429`` /
``fake-status-429``, ``fake-delay-2.5``, ``fake-close``, ``fake-close-after-3``, ``fake-chunk-delay-0.1``).
Injected 429s carry ``retry-after: 1``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_upstream import (
    _MODEL_CONTROLS_RE,
    EMBEDDING_DIMS,
    FakeOpenAI,
    Faults,
    _BadControl,
    _drop_connection,
    _words,
    count_prompt_tokens,
    embedding_for,
    last_user_text,
    message_text,
    reply_for,
    resolve_faults,
)

__all__ = ["DEFAULT_MODELS", "FakeOllama", "ollama_reply"]

DEFAULT_MODELS: tuple[str, ...] = ("llama3.2", "qwen2.5", "deepseek-r1", "nomic-embed-text")
VERSION = "0.12.6"
MIDWAY_ERROR = "an error was encountered while running the model: unexpected EOF"

_INJECTED_ERRORS: dict[int, str] = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": message}, status=status, headers=headers, dumps=lambda v: orjson.dumps(v).decode()
    )


def _not_found(model: str) -> web.Response:
    return _error(404, f'model "{model}" not found, try pulling it first')


def ollama_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The fake's text answer (before ``num_predict`` and ``format``), exposed so tests can compute it."""
    if messages and messages[-1].get("role") == "tool":
        last = messages[-1]
        return f"fake reply to tool {last.get('tool_name') or '?'}: {' '.join(_words(message_text(last)))}"
    return reply_for(messages)


class FakeOllama(FakeOpenAI):
    """The fake Ollama server; ``base_url`` is the host URL (``http://127.0.0.1:PORT``) the SDK takes."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key or "", models=models, chunk_delay=chunk_delay, host=host, port=port)
        self.require_key = api_key is not None

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeOllama is not running; use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}"

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/embed", self._embed)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_get("/api/version", self._version)
        app.router.add_route("*", "/{tail:.*}", self._page_not_found)
        return app

    # ------------------------------------------------------------------ shared prelude

    def _known(self, model: str) -> bool:
        name = model.removesuffix(":latest")
        return name in self.models or model in self.models or _MODEL_CONTROLS_RE.fullmatch(name) is not None

    async def _ollama_prelude(self, request: web.Request) -> tuple[Faults, dict[str, Any], str] | web.StreamResponse:
        """Record, authenticate, apply faults and check the model; returns a response when the request is done."""
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            self._record(request, raw, None)
            return _error(400, "invalid character 'x' looking for beginning of value")
        self._record(request, raw, body)
        if self.require_key:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token.strip() != self.api_key:
                return _error(401, "unauthorized")
        if not isinstance(body, dict):
            return _error(400, "json: cannot unmarshal value into Go value of type api.ChatRequest")
        model = body.get("model")
        try:
            faults = resolve_faults(
                {k.lower(): v for k, v in request.headers.items()}, model if isinstance(model, str) else None
            )
        except _BadControl as exc:
            return _error(400, str(exc))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.close:
            _drop_connection(request)
            return web.Response(status=204)
        if faults.status is not None:
            message = _INJECTED_ERRORS.get(faults.status, f"error {faults.status}")
            if faults.status == 404:
                message = f'model "{model}" not found, try pulling it first'
            headers = {"retry-after": "1"} if faults.status == 429 else None
            return _error(faults.status, f"{message} (injected by FakeOllama)", headers)
        if not isinstance(model, str) or not model:
            return _error(400, "model is required")
        if not self._known(model):
            return _not_found(model)
        return faults, body, model

    # ------------------------------------------------------------------ endpoints

    async def _page_not_found(self, request: web.Request) -> web.StreamResponse:
        self._record(request, await request.read(), None)
        return web.Response(status=404, text="404 page not found")

    async def _version(self, request: web.Request) -> web.StreamResponse:
        self._record(request, b"", None)
        return web.json_response({"version": VERSION})

    async def _tags(self, request: web.Request) -> web.StreamResponse:
        self._record(request, b"", None)
        models = [
            {
                "name": f"{name}:latest",
                "model": f"{name}:latest",
                "modified_at": "2026-01-01T00:00:00Z",
                "size": 2_019_393_189,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "3.2B",
                    "quantization_level": "Q4_K_M",
                },
            }
            for name in self.models
        ]
        return web.json_response({"models": models})

    async def _embed(self, request: web.Request) -> web.StreamResponse:
        prelude = await self._ollama_prelude(request)
        if not isinstance(prelude, tuple):
            return prelude
        _, body, model = prelude
        value = body.get("input")
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _error(400, "invalid input type")
        dims = body.get("dimensions") or EMBEDDING_DIMS
        if not isinstance(dims, int) or dims < 1:
            return _error(400, "dimensions must be a positive integer")
        return web.json_response(
            {
                "model": model,
                "embeddings": [embedding_for(text, model=model, dims=dims) for text in texts],
                "total_duration": 14_143_917,
                "load_duration": 1_019_500,
                "prompt_eval_count": sum(len(_words(text)) for text in texts),
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        prelude = await self._ollama_prelude(request)
        if not isinstance(prelude, tuple):
            return prelude
        faults, body, model = prelude
        messages = body.get("messages") or []
        invalid = self._invalid_messages(messages)
        if invalid is not None:
            return _error(400, invalid)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            return _error(400, "json: cannot unmarshal options into Go struct field ChatRequest.options")
        stream = body.get("stream", True) is not False
        base = {"model": model, "created_at": _now()}
        if not messages:
            done = {**base, "message": {"role": "assistant", "content": ""}, "done_reason": "load", "done": True}
            return await self._stream_lines(request, faults, [done]) if stream else web.json_response(done)

        calls = self._tool_calls(body, messages)
        thinking = _words(f"thinking about: {last_user_text(messages)}") if body.get("think") else []
        words: list[str] = []
        done_reason = "stop"
        if calls:
            eval_count = sum(
                len(_words(f"{c['function']['name']} {orjson.dumps(c['function']['arguments']).decode()}"))
                for c in calls
            )
        else:
            words = _words(ollama_reply(messages))
            limit = options.get("num_predict")
            if isinstance(limit, int) and 0 < limit < len(words):
                words, done_reason = words[:limit], "length"
            eval_count = len(words)
            if body.get("format"):
                words = [orjson.dumps({"reply": " ".join(words)}).decode()]
        final = {
            **base,
            "done": True,
            "done_reason": done_reason,
            "total_duration": 1_234_567_890,
            "load_duration": 12_345_678,
            "prompt_eval_count": count_prompt_tokens(messages),
            "prompt_eval_duration": 123_456_789,
            "eval_count": eval_count + len(thinking),
            "eval_duration": 987_654_321,
        }
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": " ".join(words)}
            if thinking:
                message["thinking"] = " ".join(thinking)
            if calls:
                message["tool_calls"] = calls
            return web.json_response({**final, "message": message, "done": True})

        lines: list[dict[str, Any]] = []
        for i, word in enumerate(thinking):
            lines.append(
                {
                    **base,
                    "message": {"role": "assistant", "content": "", "thinking": word if i == 0 else f" {word}"},
                    "done": False,
                }
            )
        for i, word in enumerate(words):
            lines.append(
                {**base, "message": {"role": "assistant", "content": word if i == 0 else f" {word}"}, "done": False}
            )
        if calls:
            lines.append({**base, "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False})
        if "fail midway" in last_user_text(messages).lower():
            lines = [*lines[:2], {"error": MIDWAY_ERROR}]
        else:
            lines.append({**final, "message": {"role": "assistant", "content": ""}})
        return await self._stream_lines(request, faults, lines)

    @staticmethod
    def _invalid_messages(messages: Any) -> str | None:
        """Ollama's Go decoder rejects what does not fit its types; mirror the checks that catch adapter bugs."""
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return "json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message"
        for message in messages:
            if not isinstance(message.get("content", ""), str):
                return "json: cannot unmarshal array into Go struct field Message.messages.content of type string"
            for call in message.get("tool_calls") or ():
                if not isinstance((call.get("function") or {}).get("arguments"), dict):
                    return (
                        "json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls."
                        "function.arguments of type api.ToolCallFunctionArguments"
                    )
            for image in message.get("images") or ():
                try:
                    base64.b64decode(image, validate=True)
                except (binascii.Error, TypeError, ValueError):
                    return "illegal base64 data at input byte 0"
        return None

    @staticmethod
    def _tool_calls(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        tools = body.get("tools")
        if not isinstance(tools, list) or not tools or messages[-1].get("role") != "user":
            return []
        text = last_user_text(messages)
        lowered = text.lower()
        if "call tool" not in lowered and "call all tools" not in lowered:
            return []
        names = [
            t["function"]["name"]
            for t in tools
            if isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
        ]
        chosen = names if "call all tools" in lowered else names[:1]
        return [{"function": {"index": i, "name": name, "arguments": {"input": text}}} for i, name in enumerate(chosen)]

    async def _stream_lines(
        self, request: web.Request, faults: Faults, lines: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        delay = self.chunk_delay if faults.chunk_delay is None else faults.chunk_delay
        try:
            for sent, line in enumerate(lines):
                if faults.close_after is not None and sent >= faults.close_after:
                    _drop_connection(request)
                    return response
                if sent and delay:
                    await asyncio.sleep(delay)
                await response.write(orjson.dumps(line) + b"\n")
            await response.write_eof()
        except ConnectionError:
            pass
        return response
