"""A protocol-faithful fake of the OpenAI HTTP API, served on a real localhost socket.

Why a real server: the gateway talks to providers over HTTP with its own client, timeouts and SSE
relay. Mocking at the Python level would skip exactly the code we need to trust (connection
handling, chunk-by-chunk relay, header rewriting), so tests point a provider's ``base_url`` at this
fake instead. It runs in a background thread with its own event loop, so both sync tests and async
tests (whose loop must not be blocked by the server) can use it::

    with FakeOpenAI() as fake:
        client = OpenAI(base_url=fake.base_url, api_key=fake.api_key)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])
        assert fake.last_request.json["model"] == "gpt-4o-mini"
        assert fake.last_request.headers["authorization"] == "Bearer sk-fake-upstream"

Endpoints (OpenAI wire format, same field names and shapes):

* ``POST /v1/chat/completions`` -- non-streaming and ``"stream": true`` (SSE, one ``data:`` event per
  chunk, each flushed separately, ending with ``data: [DONE]``). With
  ``stream_options.include_usage`` every chunk carries ``"usage": null`` and a last chunk with
  ``"choices": []`` carries the usage, as OpenAI does. ``stream_options`` without ``stream`` is a
  400, as on the real API.
* ``POST /v1/embeddings`` -- ``input`` as a string, list of strings or token arrays; honours
  ``dimensions`` and ``encoding_format`` (``"base64"`` = little-endian float32, which the openai SDK
  asks for by default).
* ``GET /v1/models`` and ``GET /v1/models/{id}``.
* Anything else: 404 ``Invalid URL (METHOD /path)``, like OpenAI.

Deterministic behaviour (so tests can assert exact values):

* Reply text is ``"fake reply to: <last user message text>"`` with the user text whitespace-
  normalised and cut to the first ``MAX_ECHO_WORDS`` words. ``max_completion_tokens`` /
  ``max_tokens`` cut the reply to that many words and set ``finish_reason: "length"``.
* ``prompt_tokens`` = whitespace-separated words in every message's text content + 3 per message
  (see :func:`count_prompt_tokens`); ``completion_tokens`` = words in the reply (for a tool call:
  words in ``name + " " + arguments``). Embedding tokens = words per string (length for token arrays).
* When ``tools`` are given and the last user message contains ``"call tool"`` (any case), the answer
  is a call of the first function tool (or the one named by ``tool_choice``) with arguments
  ``{"input": <last user text>}`` and ``finish_reason: "tool_calls"``; streamed as OpenAI streams
  tool calls (id/name first, then argument fragments).
* Embeddings are unit-length vectors derived from SHA-256 of ``model`` + text, rounded to float32 so
  ``"float"`` and ``"base64"`` responses decode to identical numbers.

Errors use OpenAI's body ``{"error": {"message", "type", "param", "code"}}``: missing or wrong bearer
key -> 401 ``invalid_api_key``; unknown model -> 404 ``model_not_found``; bad JSON / missing fields ->
400 ``invalid_request_error``.

Fault injection, per request so parallel tests never interfere. Each control can be given as a
request header or, for callers that cannot set upstream headers (e.g. tests that go through the
gateway), as segments of the model name. Headers win over the model name.

=========================  =========================  ==============================================
Header                     Model name segment         Effect
=========================  =========================  ==============================================
``x-fake-status: 503``     ``fake-status-503``        answer with that 4xx/5xx status and an OpenAI
                                                      error body (429 also sends ``retry-after: 1``)
``x-fake-delay: 2.5``      ``fake-delay-2.5``         sleep that many seconds before answering
``x-fake-close: 1``        ``fake-close``             drop the connection without any response
``x-fake-close-after: 3``  ``fake-close-after-3``     streaming: drop the connection after 3 chunks
                                                      (no finish chunk, no ``[DONE]``)
``x-fake-chunk-delay: .1`` ``fake-chunk-delay-0.1``   per-chunk streaming delay (overrides the
                                                      constructor's ``chunk_delay``)
=========================  =========================  ==============================================

Model-name segments combine, e.g. ``fake-delay-0.5-status-503``; any model name of that form counts
as a known model (and is echoed back as the response's ``model``). Processing order is: record the
request -> check the API key -> delay -> close -> status -> validate and answer.

Every request (including rejected ones) is recorded in :attr:`FakeOpenAI.requests` as a
:class:`RecordedRequest` (method, path, lower-cased headers, parsed JSON body).

Standalone (benchmarks, demos)::

    python -m tests.fakes.openai_upstream --port 9999 [--api-key KEY] [--chunk-delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import logging
import math
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web

DEFAULT_API_KEY = "sk-fake-upstream"
DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small")
SYSTEM_FINGERPRINT = "fp_fake0000001"
MAX_ECHO_WORDS = 32
"""Longest user text echoed in a reply; keeps replies (and streams) short for arbitrary prompts."""
PER_MESSAGE_TOKENS = 3
"""Fixed per-message overhead, mirroring the real tokenizer's role/separator tokens."""
EMBEDDING_DIMS = 8
"""Default embedding size when the request does not ask for ``dimensions``."""
MODEL_CREATED = 1_700_000_000
"""Fixed ``created`` timestamp for ``/v1/models`` so listings are stable across runs."""

_MODEL_CONTROLS_RE = re.compile(
    r"fake(?:-(?:status-\d{3}|delay-\d+(?:\.\d+)?|chunk-delay-\d+(?:\.\d+)?|close-after-\d+|close))+"
)
_MODEL_SEGMENT_RE = re.compile(r"-(status|delay|chunk-delay|close-after|close)(?:-(\d+(?:\.\d+)?))?")
_TRUTHY = {"1", "true", "yes", "on"}

# Realistic (type, code, message) for statuses injected with x-fake-status / fake-status-N.
_INJECTED_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("request_forbidden", "unsupported_country_region_territory", "Request forbidden."),
    404: ("invalid_request_error", "model_not_found", "The requested resource does not exist."),
    408: ("server_error", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, so tests can check what the gateway actually sent."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-cased names; repeated headers are joined with ", "."""
    raw_body: bytes
    json: Any
    """Parsed JSON body, or ``None`` when the body was empty or not valid JSON."""

    @property
    def model(self) -> str | None:
        """The body's ``model`` field, the thing most gateway tests check was rewritten."""
        if isinstance(self.json, dict):
            model = self.json.get("model")
            return model if isinstance(model, str) else None
        return None

    def header(self, name: str) -> str | None:
        """Case-insensitive header lookup."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Faults:
    """Per-request fault controls resolved from headers and the model name."""

    status: int | None = None
    delay: float = 0.0
    close: bool = False
    close_after: int | None = None
    chunk_delay: float | None = None


class _BadControl(ValueError):
    """An x-fake-* header had a value we cannot interpret; reported to the caller as a 400."""


@dataclass
class _Context:
    """What the shared prelude learned about a request, handed to the endpoint handler."""

    faults: Faults
    body: Any
    body_error: bool


def _words(text: str) -> list[str]:
    return text.split()


def message_text(message: Mapping[str, Any]) -> str:
    """Text of a chat message: plain string content or the ``text`` parts of a content array."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """Deterministic prompt size: words of every message's text + ``PER_MESSAGE_TOKENS`` each."""
    return sum(len(_words(message_text(m))) + PER_MESSAGE_TOKENS for m in messages)


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Text of the last ``user`` message (empty when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def reply_for(messages: Sequence[Mapping[str, Any]]) -> str:
    """The fake's deterministic answer, exposed so tests can compute expected output."""
    echoed = " ".join(_words(last_user_text(messages))[:MAX_ECHO_WORDS])
    return f"fake reply to: {echoed}".rstrip()


def embedding_for(text: str, *, model: str, dims: int = EMBEDDING_DIMS) -> list[float]:
    """Deterministic unit vector for ``text``, already rounded to float32 (see module docstring)."""
    raw = b""
    counter = 0
    while len(raw) < 4 * dims:
        raw += hashlib.sha256(f"{model}\0{counter}\0{text}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dims}I", raw[: 4 * dims])
    vec = [(i / 0xFFFFFFFF) * 2.0 - 1.0 for i in ints]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    packed = struct.pack(f"<{dims}f", *(v / norm for v in vec))
    return list(struct.unpack(f"<{dims}f", packed))


def _mask_key(key: str) -> str:
    """Mask a key the way OpenAI does in 401 messages, so errors never echo a full secret."""
    if len(key) <= 12:
        return key
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def _parse_float(value: str, name: str) -> float:
    try:
        parsed = float(value)
    except ValueError:
        raise _BadControl(f"{name} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(parsed) or parsed < 0:
        raise _BadControl(f"{name} must be a non-negative number of seconds, got {value!r}")
    return parsed


def _parse_int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _BadControl(f"{name} must be an integer, got {value!r}") from None


def resolve_faults(headers: Mapping[str, str], model: str | None) -> Faults:
    """Merge model-name controls with ``x-fake-*`` headers (headers win)."""
    values: dict[str, str] = {}
    if model and _MODEL_CONTROLS_RE.fullmatch(model):
        for name, arg in _MODEL_SEGMENT_RE.findall(model):
            values[name] = arg or "1"
    for name in ("status", "delay", "close", "close-after", "chunk-delay"):
        header_value = headers.get(f"x-fake-{name}")
        if header_value is not None:
            values[name] = header_value.strip()

    status: int | None = None
    if "status" in values:
        status = _parse_int(values["status"], "x-fake-status")
        if not 400 <= status <= 599:
            raise _BadControl(f"x-fake-status must be a 4xx or 5xx status, got {status}")
    close_after: int | None = None
    if "close-after" in values:
        close_after = _parse_int(values["close-after"], "x-fake-close-after")
        if close_after < 0:
            raise _BadControl("x-fake-close-after must be >= 0")
    return Faults(
        status=status,
        delay=_parse_float(values["delay"], "x-fake-delay") if "delay" in values else 0.0,
        close=values.get("close", "").lower() in _TRUTHY,
        close_after=close_after,
        chunk_delay=(_parse_float(values["chunk-delay"], "x-fake-chunk-delay") if "chunk-delay" in values else None),
    )


def error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """An error in OpenAI's exact body shape; the SDK maps the status to its exception classes."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return _json_response(body, status=status, headers=headers)


def _json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # OpenAI pretty-prints non-streaming bodies; mirror it so byte-level relays see the real thing.
    all_headers = {"x-request-id": f"req_{uuid.uuid4().hex}", "openai-version": "2020-10-01"}
    all_headers.update(headers or {})
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_INDENT_2),
        status=status,
        content_type="application/json",
        headers=all_headers,
    )


def _drop_connection(request: web.BaseRequest) -> None:
    """Abort the TCP connection so the client sees a disconnect, not an HTTP answer."""
    if request.transport is not None:
        request.transport.abort()


class FakeOpenAI:
    """The fake server; use as a context manager (or ``start()`` / ``stop()``).

    Attributes: ``base_url`` (``http://127.0.0.1:PORT/v1``), ``port``, ``api_key``, ``models``,
    ``chunk_delay`` (mutable, seconds between streamed chunks), ``requests`` / ``last_request`` /
    ``clear()`` for inspecting what was received.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        models: Iterable[str] = DEFAULT_MODELS,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.models: tuple[str, ...] = tuple(models)
        self.chunk_delay = chunk_delay
        self.host = host
        self._requested_port = port
        self.port: int = 0
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        """High-water mark of concurrent chat completions (a handler is in flight until its response is sent)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client / provider config as ``base_url``."""
        if not self.port:
            raise RuntimeError("FakeOpenAI is not running; use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}/v1"

    def start(self, *, access_log: bool = False) -> Self:
        """Start serving in a daemon thread; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI already started")
        # Bind here (not in the thread) so the port is known and any bind error surfaces directly.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._serve, args=(sock, access_log), name=f"FakeOpenAI:{self.port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._startup_error is not None:
            error, self._startup_error = self._startup_error, None
            self.stop()
            raise RuntimeError("FakeOpenAI failed to start") from error
        return self

    def stop(self) -> None:
        """Stop serving; in-flight requests (e.g. long injected delays) are cancelled quickly."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if thread is None:
            return
        if loop is not None and runner is not None and not loop.is_closed():
            # Queued onto the server loop, so this also works if run_forever() has not begun yet.
            future = asyncio.run_coroutine_threadsafe(runner.cleanup(), loop)
            try:
                future.result(timeout=10)
            finally:
                loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._runner = None
        self.port = 0
        self._ready.clear()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, sock: socket.socket, access_log: bool) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            # handler_cancellation: a client that gives up (timeout tests) cancels its sleeping
            # handler instead of leaving it to pile up until shutdown.
            runner = web.AppRunner(
                self._make_app(),
                handler_cancellation=True,
                shutdown_timeout=0.5,
                **({} if access_log else {"access_log": None}),
            )
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.SockSite(runner, sock).start())
            self._runner = runner
        except BaseException as exc:
            self._startup_error = exc
            sock.close()
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._counted_chat_completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._invalid_url)
        return app

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot (a copy) of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request; raises ``LookupError`` when none arrived (a test bug)."""
        with self._lock:
            if not self._requests:
                raise LookupError("FakeOpenAI has not received any request")
            return self._requests[-1]

    def clear(self) -> None:
        """Forget recorded requests (e.g. between phases of one test)."""
        with self._lock:
            self._requests.clear()

    def _record(self, request: web.Request, raw: bytes, body: Any) -> None:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=headers,
            raw_body=raw,
            json=body,
        )
        with self._lock:
            self._requests.append(recorded)

    # ------------------------------------------------------------------ shared prelude

    async def _prelude(self, request: web.Request) -> _Context | web.StreamResponse:
        """Record, authenticate and apply faults; returns a response when the request is done."""
        raw = await request.read()
        body: Any = None
        body_error = False
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body_error = True
        self._record(request, raw, body)

        auth_error = self._check_auth(request.headers.get("Authorization"))
        if auth_error is not None:
            return auth_error

        model = body.get("model") if isinstance(body, dict) else None
        try:
            faults = resolve_faults(
                {k.lower(): v for k, v in request.headers.items()},
                model if isinstance(model, str) else None,
            )
        except _BadControl as exc:
            return error_response(400, str(exc))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.close:
            _drop_connection(request)
            return web.Response(status=204)  # never reaches the client: the transport is gone
        if faults.status is not None:
            return self._injected_error(faults.status)
        return _Context(faults=faults, body=body, body_error=body_error)

    def _check_auth(self, authorization: str | None) -> web.Response | None:
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return error_response(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API "
                "key from https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        if token != self.api_key:
            return error_response(
                401,
                f"Incorrect API key provided: {_mask_key(token)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return None

    @staticmethod
    def _injected_error(status: int) -> web.Response:
        default_type = "server_error" if status >= 500 else "invalid_request_error"
        type_, code, message = _INJECTED_ERRORS.get(status, (default_type, None, f"Error {status}."))
        headers = {"retry-after": "1"} if status == 429 else None
        return error_response(status, f"{message} (injected by FakeOpenAI)", type_=type_, code=code, headers=headers)

    def _known_model(self, model: str) -> bool:
        return model in self.models or _MODEL_CONTROLS_RE.fullmatch(model) is not None

    @staticmethod
    def _model_not_found(model: str) -> web.Response:
        return error_response(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    @staticmethod
    def _bad_json() -> web.Response:
        return error_response(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
            "sent was not valid JSON.)",
        )

    @staticmethod
    def _missing(param: str) -> web.Response:
        return error_response(
            400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )

    def _validate_common(self, ctx: _Context) -> web.Response | str:
        """Checks shared by POST endpoints; returns the model name or an error response."""
        if ctx.body_error or not isinstance(ctx.body, dict):
            return self._bad_json()
        model = ctx.body.get("model")
        if not isinstance(model, str) or not model:
            return error_response(
                400, "You must provide a model parameter.", param="model", code="missing_required_parameter"
            )
        if not self._known_model(model):
            return self._model_not_found(model)
        return model

    # ------------------------------------------------------------------ endpoints

    async def _invalid_url(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self._record(request, raw, body)
        return error_response(404, f"Invalid URL ({request.method} {request.path})")

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        ctx = await self._prelude(request)
        if not isinstance(ctx, _Context):
            return ctx
        return _json_response({"object": "list", "data": [self._model_object(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        ctx = await self._prelude(request)
        if not isinstance(ctx, _Context):
            return ctx
        model = request.match_info["model"]
        if model not in self.models:
            return self._model_not_found(model)
        return _json_response(self._model_object(model))

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": MODEL_CREATED, "owned_by": "system"}

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        ctx = await self._prelude(request)
        if not isinstance(ctx, _Context):
            return ctx
        model = self._validate_common(ctx)
        if isinstance(model, web.Response):
            return model
        body: dict[str, Any] = ctx.body
        if "input" not in body:
            return self._missing("input")
        texts = self._embedding_inputs(body["input"])
        if texts is None:
            return error_response(
                400,
                "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                param="input",
            )
        dims = body.get("dimensions", EMBEDDING_DIMS)
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 1:
            return error_response(400, f"Invalid 'dimensions': {dims!r}.", param="dimensions")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return error_response(
                400,
                f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
                param="encoding_format",
                code="invalid_value",
            )
        data = []
        prompt_tokens = 0
        for index, (text, tokens) in enumerate(texts):
            prompt_tokens += tokens
            vector = embedding_for(text, model=model, dims=dims)
            embedding: list[float] | str = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii") if encoding == "base64" else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return _json_response(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
            }
        )

    @staticmethod
    def _embedding_inputs(value: Any) -> list[tuple[str, int]] | None:
        """Normalise every accepted ``input`` form to (text, token count) pairs; None if invalid."""

        def is_token_array(item: Any) -> bool:
            return (
                isinstance(item, list)
                and bool(item)
                and all(isinstance(t, int) and not isinstance(t, bool) for t in item)
            )

        if isinstance(value, str):
            return [(value, len(_words(value)))]
        if is_token_array(value):
            return [(" ".join(map(str, value)), len(value))]
        if isinstance(value, list) and value:
            out: list[tuple[str, int]] = []
            for item in value:
                if isinstance(item, str):
                    out.append((item, len(_words(item))))
                elif is_token_array(item):
                    out.append((" ".join(map(str, item)), len(item)))
                else:
                    return None
            return out
        return None

    async def _counted_chat_completions(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1  # only the fake's own loop thread touches these
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._chat_completions(request)
        finally:
            self.in_flight -= 1

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        ctx = await self._prelude(request)
        if not isinstance(ctx, _Context):
            return ctx
        model = self._validate_common(ctx)
        if isinstance(model, web.Response):
            return model
        body: dict[str, Any] = ctx.body
        messages = body.get("messages")
        if messages is None:
            return self._missing("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return error_response(400, "Invalid type for 'messages': expected an array.", param="messages")
        if not messages:
            return error_response(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                "empty array instead.",
                param="messages",
                code="empty_array",
            )
        stream = body.get("stream") is True
        stream_options = body.get("stream_options")
        if stream_options is not None and not stream:
            return error_response(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )

        prompt_tokens = count_prompt_tokens(messages)
        tool_call = self._tool_call_for(body, messages)
        if tool_call is not None:
            name, arguments = tool_call
            completion_tokens = len(_words(f"{name} {arguments}"))
            finish_reason = "tool_calls"
            reply_words: list[str] = []
        else:
            reply_words = _words(reply_for(messages))
            finish_reason = "stop"
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(reply_words):
                reply_words = reply_words[:limit]
                finish_reason = "length"
            completion_tokens = len(reply_words)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(time.time())

        if stream:
            include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
            return await self._stream_chat(
                request,
                ctx.faults,
                completion_id=completion_id,
                created=created,
                model=model,
                reply_words=reply_words,
                tool_call=tool_call,
                finish_reason=finish_reason,
                usage=usage if include_usage else None,
            )

        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
        if tool_call is not None:
            message["tool_calls"] = [
                {
                    "id": self._tool_call_id(completion_id),
                    "type": "function",
                    "function": {"name": tool_call[0], "arguments": tool_call[1]},
                }
            ]
        else:
            message["content"] = " ".join(reply_words)
        return _json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )

    @staticmethod
    def _tool_call_id(completion_id: str) -> str:
        return "call_" + hashlib.sha256(completion_id.encode()).hexdigest()[:24]

    @staticmethod
    def _tool_call_for(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
        """(name, JSON arguments) when the request asks for a tool call, per the module docstring."""
        tools = body.get("tools")
        if not isinstance(tools, list) or not tools:
            return None
        text = last_user_text(messages)
        if "call tool" not in text.lower():
            return None
        tool_choice = body.get("tool_choice")
        if tool_choice == "none":
            return None
        names = [
            t["function"]["name"]
            for t in tools
            if isinstance(t, dict)
            and t.get("type") == "function"
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
        ]
        if not names:
            return None
        name = names[0]
        if isinstance(tool_choice, dict):
            chosen = tool_choice.get("function", {})
            if isinstance(chosen, dict) and chosen.get("name") in names:
                name = chosen["name"]
        return name, orjson.dumps({"input": text}).decode()

    async def _stream_chat(
        self,
        request: web.Request,
        faults: Faults,
        *,
        completion_id: str,
        created: int,
        model: str,
        reply_words: list[str],
        tool_call: tuple[str, str] | None,
        finish_reason: str,
        usage: dict[str, Any] | None,
    ) -> web.StreamResponse:
        include_usage = usage is not None

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if include_usage:
                out["usage"] = None
            return out

        chunks: list[dict[str, Any]] = []
        if tool_call is not None:
            name, arguments = tool_call
            call = {
                "index": 0,
                "id": self._tool_call_id(completion_id),
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            chunks.append(chunk({"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}))
            for start in range(0, len(arguments), 8):
                piece = arguments[start : start + 8]
                chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            for i, word in enumerate(reply_words):
                chunks.append(chunk({"content": word if i == 0 else f" {word}"}))
        chunks.append(chunk({}, finish_reason))
        if usage is not None:
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            chunks.append(final)

        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "x-request-id": f"req_{uuid.uuid4().hex}",
                "openai-version": "2020-10-01",
            },
        )
        await response.prepare(request)
        delay = self.chunk_delay if faults.chunk_delay is None else faults.chunk_delay
        events = [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
        try:
            for sent, event in enumerate(events):
                if faults.close_after is not None and sent >= faults.close_after:
                    _drop_connection(request)
                    return response
                if sent and delay:
                    await asyncio.sleep(delay)
                await response.write(event)  # one write per event: each chunk hits the wire alone
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream; nothing left to tell it
        return response


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone until interrupted (benchmarks and demos)."""
    parser = argparse.ArgumentParser(description="Fake OpenAI upstream for Alephant tests and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeOpenAI(
        api_key=args.api_key,
        models=args.models,
        chunk_delay=args.chunk_delay,
        host=args.host,
        port=args.port,
    )
    if args.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    fake.start(access_log=args.access_log)
    try:
        print(f"FakeOpenAI listening on {fake.base_url} (api key {fake.api_key!r}); Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
