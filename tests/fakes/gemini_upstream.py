"""A protocol-faithful fake of Google's Generative Language API (``v1beta``), on a real localhost socket.

It reuses the server machinery of :class:`tests.fakes.openai_upstream.FakeOpenAI` (thread, event loop,
request recording, ``clear()``) and speaks Gemini's wire instead::

    with FakeGemini() as fake:
        client = genai.Client(api_key=fake.api_key,
                              http_options=types.HttpOptions(base_url=fake.root_url, api_version="v1beta"))
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert fake.last_request.path == "/v1beta/models/gemini-2.5-flash:generateContent"

Endpoints (``base_url`` = ``http://127.0.0.1:PORT/v1beta``):

* ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse`` (each SSE event a
  whole ``GenerateContentResponse``, CRLF-framed as Google frames them, one event per write).
* ``POST /v1beta/models/{model}:batchEmbedContents`` and ``:embedContent``.
* ``GET /v1beta/models`` and ``GET /v1beta/models/{model}``.
* Anything else: Google's HTML 404.

Authentication as Google does it: ``x-goog-api-key`` header or ``?key=``. No key -> 403
``PERMISSION_DENIED``; a wrong key -> **400** ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID`` (Google does
not answer 401 for a bad API key).

Validation mirrors the real API's strictness where adapters go wrong: unknown fields anywhere in the request
(top level, ``generationConfig``, parts, function declarations, ``Schema`` objects -- e.g.
``additionalProperties``) are 400 ``Invalid JSON payload received. Unknown name ...``; roles other than
``user``/``model``; empty ``parts``; an OBJECT schema with empty ``properties``; a function-response turn
whose part count differs from the preceding function-call turn. For Gemini 3+ model names
(``gemini-3*``, ``gemini-4*``) the first function call of every step of the current turn must carry the
``thoughtSignature`` the fake issued (or ``skip_thought_signature_validator``), as on the real API.

Deterministic behaviour (so tests can assert exact values):

* Reply text is ``"fake reply to: <last user text>"`` (first ``MAX_ECHO_WORDS`` words). After a
  function-response turn it is ``"fake reply to tool results: <name> returned <compact JSON>"`` per result.
* ``maxOutputTokens`` cuts the reply to that many words, finish ``MAX_TOKENS``; a ``stopSequences`` entry
  found in the reply cuts it there (finish ``STOP``).
* With ``functionDeclarations`` and ``"call tool"`` in the last user text (or mode ``ANY``), the answer is a
  ``functionCall`` of the first declared (or first allowed) function with ``args {"input": <text>}``;
  ``"parallel"`` in the text calls every declared (allowed) function. Mode ``NONE`` never calls. Gemini 3+
  names attach a ``thoughtSignature`` to the first call. In streams each call is its own event (Gemini does
  not stream arguments).
* ``thinkingConfig.includeThoughts`` adds a ``thought: true`` part ``"thinking about: <text>"``.
* Usage: ``promptTokenCount`` = words of every text part (system instruction included) + 3 per content;
  ``candidatesTokenCount`` = reply words (or words of ``name + args`` per call); ``thoughtsTokenCount`` =
  thought words. Streams carry ``usageMetadata`` on every event, complete on the last.
* Embeddings reuse :func:`tests.fakes.openai_upstream.embedding_for`; ``batchEmbedContents`` reports no usage.

Fault injection, per request, as a header or as segments of a ``fake-...`` model name (headers win):

==============================  ==========================  ============================================
Header                          Model name segment          Effect
==============================  ==========================  ============================================
``x-fake-status: 429``          ``fake-status-429``         that status with Google's error body (429 adds
                                                            RetryInfo ``1s`` and ``retry-after: 1``)
``x-fake-delay: 2.5``           ``fake-delay-2.5``          sleep before answering
``x-fake-close: 1``             ``fake-close``              drop the connection
``x-fake-close-after: 2``       ``fake-close-after-2``      streaming: drop after 2 events
``x-fake-chunk-delay: .1``      ``fake-chunk-delay-0.1``    delay between streamed events
``x-fake-finish: SAFETY``       ``fake-finish-safety``      that ``finishReason``, no content
``x-fake-blocked: 1``           ``fake-blocked``            ``promptFeedback.blockReason``, no candidates
``x-fake-stream-error: 1``      ``fake-stream-error``       streaming: an ``error`` event after the first
``x-fake-cached: 4``            ``fake-cached-4``           ``cachedContentTokenCount`` (<= prompt)
==============================  ==========================  ============================================

Standalone: ``python -m tests.fakes.gemini_upstream --port 9998``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.openai_upstream import FakeOpenAI, embedding_for

DEFAULT_API_KEY = "AIzaSyFake-gemini-upstream-key-000000"
DEFAULT_MODELS: tuple[str, ...] = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
    "gemini-3.8-flash",
    "gemini-4-argon",
    "gemini-embedding-001",
    "gemini-embedding-2",
)
SKIP_SIGNATURE = "skip_thought_signature_validator"
MAX_ECHO_WORDS = 32
PER_CONTENT_TOKENS = 3
EMBEDDING_DIMS = 8

_CONTROLS_RE = re.compile(
    r"fake(?:-(?:status-\d{3}|delay-\d+(?:\.\d+)?|chunk-delay-\d+(?:\.\d+)?|close-after-\d+|close|"
    r"finish-[a-z_]+|blocked|stream-error|cached-\d+))+"
)
_SEGMENT_RE = re.compile(
    r"-(status|delay|chunk-delay|close-after|close|finish|blocked|stream-error|cached)(?:-(\d+(?:\.\d+)?|[a-z_]+))?"
)
_TRUTHY = {"1", "true", "yes", "on"}

_TOP_LEVEL = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "safetySettings",
    "generationConfig",
    "cachedContent",
    "serviceTier",
    "store",
    "model",
}
_GENERATION_CONFIG = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
    "audioTranscriptionConfig",
    "continuationToken",
}
_PART = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "thought",
    "thoughtSignature",
    "executableCode",
    "codeExecutionResult",
    "videoMetadata",
    "partMetadata",
    "mediaResolution",
}
_DECLARATION = {"name", "description", "parameters", "parametersJsonSchema", "response", "responseJsonSchema"}
_SCHEMA = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
_SCHEMA_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL", "TYPE_UNSPECIFIED"}
_STATUS_NAMES = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: (
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential.",
    ),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    499: ("CANCELLED", "The operation was cancelled."),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}


@dataclass(frozen=True)
class Faults:
    status: int | None = None
    delay: float = 0.0
    close: bool = False
    close_after: int | None = None
    chunk_delay: float | None = None
    finish: str | None = None
    blocked: bool = False
    stream_error: bool = False
    cached: int = 0


class _BadRequest(ValueError):
    """A request the real API would refuse with 400 INVALID_ARGUMENT; the message is Google's wording."""


def _words(text: str) -> list[str]:
    return text.split()


def _number(value: str, name: str) -> float:
    try:
        parsed = float(value)
    except ValueError:
        raise _BadRequest(f"x-fake-{name} must be a number, got {value!r}") from None
    if not math.isfinite(parsed) or parsed < 0:
        raise _BadRequest(f"x-fake-{name} must be a non-negative number, got {value!r}")
    return parsed


def resolve_faults(headers: Mapping[str, str], model: str) -> Faults:
    """Model-name segments merged with ``x-fake-*`` headers (headers win)."""
    values: dict[str, str] = {}
    if _CONTROLS_RE.fullmatch(model):
        for name, arg in _SEGMENT_RE.findall(model):
            values[name] = arg or "1"
    for name in ("status", "delay", "close", "close-after", "chunk-delay", "finish", "blocked", "stream-error"):
        if (value := headers.get(f"x-fake-{name}")) is not None:
            values[name] = value.strip()
    if (cached := headers.get("x-fake-cached")) is not None:
        values["cached"] = cached.strip()
    status = int(_number(values["status"], "status")) if "status" in values else None
    if status is not None and not 400 <= status <= 599:
        raise _BadRequest(f"x-fake-status must be a 4xx or 5xx status, got {status}")
    return Faults(
        status=status,
        delay=_number(values["delay"], "delay") if "delay" in values else 0.0,
        close=values.get("close", "").lower() in _TRUTHY,
        close_after=int(_number(values["close-after"], "close-after")) if "close-after" in values else None,
        chunk_delay=_number(values["chunk-delay"], "chunk-delay") if "chunk-delay" in values else None,
        finish=values["finish"].upper() if "finish" in values else None,
        blocked=values.get("blocked", "").lower() in _TRUTHY,
        stream_error=values.get("stream-error", "").lower() in _TRUTHY,
        cached=int(_number(values["cached"], "cached")) if "cached" in values else 0,
    )


def is_gemini3(model: str) -> bool:
    """Models that issue and require thought signatures on function calls."""
    return model.startswith(("gemini-3", "gemini-4"))


def signature_for(name: str, args: Any) -> str:
    """The opaque ``thoughtSignature`` the fake issues for a call (and later checks)."""
    digest = hashlib.sha256(b"sig|" + name.encode() + orjson.dumps(args, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.b64encode(digest * 3).decode("ascii")


def _bytes(value: Any) -> bytes | None:
    """A proto ``bytes`` field as JSON carries it: standard or URL-safe base64 (the SDK sends the latter)."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4))
    except ValueError:
        return None


def error_body(status: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    name = _STATUS_NAMES.get(status, ("UNKNOWN", ""))[0]
    error: dict[str, Any] = {"code": status, "message": message, "status": name}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int, message: str, *, details: list[dict[str, Any]] | None = None, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Google's error shape, pretty-printed as Google serves it."""
    return web.Response(
        body=orjson.dumps(error_body(status, message, details), option=orjson.OPT_INDENT_2) + b"\n",
        status=status,
        content_type="application/json",
        charset="UTF-8",
        headers=headers,
    )


def _json(body: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n", content_type="application/json", charset="UTF-8"
    )


def _unknown(name: str, where: str) -> _BadRequest:
    at = f" at '{where}'" if where else ""
    return _BadRequest(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def _check_keys(value: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadRequest(f"Invalid value at '{where}': expected an object.")
    for key in value:
        if key not in allowed:
            raise _unknown(key, where)
    return value


def _check_schema(schema: Any, where: str) -> None:
    schema = _check_keys(schema, _SCHEMA, where)
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in _SCHEMA_TYPES):
        raise _BadRequest(f"Invalid value at '{where}.type' ({kind!r}): not a Type enum value.")
    if "enum" in schema and not all(isinstance(v, str) for v in schema["enum"]):
        raise _BadRequest(f"Invalid value at '{where}.enum': only strings are allowed.")
    properties = schema.get("properties")
    if properties is not None:
        if isinstance(kind, str) and kind.upper() == "OBJECT" and not properties:
            raise _BadRequest(f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type")
        for name, sub in properties.items():
            _check_schema(sub, f"{where}.properties[{name}].value")
    if "items" in schema:
        _check_schema(schema["items"], f"{where}.items")
    for index, branch in enumerate(schema.get("anyOf") or ()):
        _check_schema(branch, f"{where}.any_of[{index}]")


def _text(parts: Iterable[Any]) -> str:
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def validate_generate(body: Any, model: str) -> None:
    """Raise :class:`_BadRequest` for what the real API refuses (see the module docstring)."""
    if not isinstance(body, dict):
        raise _BadRequest("Invalid JSON payload received. Expected an object.")
    _check_keys(body, _TOP_LEVEL, "")
    _check_keys(body.get("generationConfig", {}), _GENERATION_CONFIG, "generation_config")
    contents = body.get("contents")
    if not contents:
        raise _BadRequest("* GenerateContentRequest.contents: contents is not specified\n")
    previous: dict[str, Any] | None = None
    for i, content in enumerate(contents):
        _check_keys(content, {"role", "parts"}, f"contents[{i}]")
        if content.get("role") not in ("user", "model", None):
            raise _BadRequest("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not parts:
            raise _BadRequest(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n")
        for j, part in enumerate(parts):
            _check_keys(part, _PART, f"contents[{i}].parts[{j}]")
        responses = sum("functionResponse" in p for p in parts)
        if responses:
            calls = sum("functionCall" in p for p in previous["parts"]) if previous else 0
            if calls != responses:
                raise _BadRequest(
                    "Please ensure that the number of function response parts is equal to the number of function "
                    "call parts of the function call turn."
                )
        previous = content
    if "systemInstruction" in body:
        for j, part in enumerate(
            _check_keys(body["systemInstruction"], {"role", "parts"}, "system_instruction")["parts"]
        ):
            _check_keys(part, _PART, f"system_instruction.parts[{j}]")
    for i, tool in enumerate(body.get("tools") or ()):
        for j, declaration in enumerate(tool.get("functionDeclarations") or ()):
            where = f"tools[{i}].function_declarations[{j}]"
            _check_keys(declaration, _DECLARATION, where)
            if "parameters" in declaration:
                _check_schema(declaration["parameters"], f"{where}.parameters")
    schema = body.get("generationConfig", {}).get("responseSchema")
    if schema is not None:
        _check_schema(schema, "generation_config.response_schema")
    if is_gemini3(model):
        _check_signatures(contents)


def _check_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3: the first function call of each step of the current turn must carry a valid signature."""
    start = 0
    for index, content in enumerate(contents):
        if content.get("role", "user") == "user" and any("functionResponse" not in p for p in content["parts"]):
            start = index
    for content in contents[start:]:
        calls = [(i, p) for i, p in enumerate(content["parts"]) if "functionCall" in p]
        if content.get("role") != "model" or not calls:
            continue
        position, first = calls[0]
        signature = first.get("thoughtSignature")
        name = first["functionCall"].get("name", "")
        if not signature:
            raise _BadRequest(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                "to work correctly, and missing thought_signature may lead to degraded model performance. "
                f"Additional data, function call `default_api:{name}` , position {position + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
        expected = _bytes(signature_for(name, first["functionCall"].get("args") or {}))
        if signature != SKIP_SIGNATURE and _bytes(signature) != expected:
            raise _BadRequest("Corrupted thought signature.")


def last_user_text(contents: Sequence[Mapping[str, Any]]) -> str:
    for content in reversed(contents):
        if content.get("role", "user") == "user" and any("text" in p for p in content.get("parts") or ()):
            return _text(content["parts"])
    return ""


def count_prompt_tokens(body: Mapping[str, Any]) -> int:
    contents = body.get("contents") or []
    system = body.get("systemInstruction") or {}
    words = sum(len(_words(_text(c.get("parts") or ()))) for c in contents)
    return words + len(_words(_text(system.get("parts") or ()))) + PER_CONTENT_TOKENS * len(contents)


def reply_for(contents: Sequence[Mapping[str, Any]]) -> str:
    """The fake's answer text, exposed so tests can compute expected output."""
    last = contents[-1] if contents else {}
    results = [p["functionResponse"] for p in last.get("parts") or () if "functionResponse" in p]
    if results:
        said = "; ".join(
            f"{r.get('name')} returned {orjson.dumps(r.get('response'), option=orjson.OPT_SORT_KEYS).decode()}"
            for r in results
        )
        return f"fake reply to tool results: {said}"
    echoed = " ".join(_words(last_user_text(contents))[:MAX_ECHO_WORDS])
    return f"fake reply to: {echoed}".rstrip()


def calls_for(body: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The function calls the fake answers with, per the module docstring."""
    names = [
        d["name"]
        for tool in body.get("tools") or ()
        for d in tool.get("functionDeclarations") or ()
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]
    contents = body.get("contents") or []
    if not names or (contents and any("functionResponse" in p for p in contents[-1].get("parts") or ())):
        return []
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    mode = str(config.get("mode", "AUTO")).upper()
    text = last_user_text(contents)
    if mode == "NONE" or (mode != "ANY" and "call tool" not in text.lower()):
        return []
    allowed = [n for n in config.get("allowedFunctionNames") or () if n in names] or names
    chosen = allowed if "parallel" in text.lower() else allowed[:1]
    return [(name, {"input": text}) for name in chosen]


class FakeGemini(FakeOpenAI):
    """The fake server. ``root_url`` is what the google-genai SDK takes; ``base_url`` is the catalog row's."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        models: Iterable[str] = DEFAULT_MODELS,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, models=models, chunk_delay=chunk_delay, host=host, port=port)

    @property
    def root_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeGemini is not running; use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1beta"

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1beta/models/{target}", self._post_model)
        app.router.add_get("/v1beta/models", self._list_models)
        app.router.add_get("/v1beta/models/{model}", self._get_model)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    # ------------------------------------------------------------------ plumbing

    async def _read(self, request: web.Request) -> tuple[Any, bool]:
        raw = await request.read()
        body: Any = None
        bad = False
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad = True
        self._record(request, raw, body)
        return body, bad

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return error_response(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API "
                "Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            reason = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
            return error_response(400, "API key not valid. Please pass a valid API key.", details=[reason])
        return None

    @staticmethod
    def _injected(status: int) -> web.Response:
        message = _STATUS_NAMES.get(status, ("UNKNOWN", f"Error {status}."))[1] + " (injected by FakeGemini)"
        if status != 429:
            return error_response(status, message)
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
        ]
        return error_response(429, message, details=details, headers={"retry-after": "1"})

    def _not_found_model(self, model: str, method: str) -> web.Response:
        return error_response(
            404,
            f"models/{model} is not found for API version v1beta, or is not supported for {method}. Call "
            "ListModels to see the list of available models and their supported methods.",
        )

    def _known(self, model: str, method: str) -> bool:
        if _CONTROLS_RE.fullmatch(model):
            return True
        embedding = "embedding" in model
        return model in self.models and embedding == (method in ("embedContent", "batchEmbedContents"))

    # ------------------------------------------------------------------ endpoints

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        await self._read(request)
        return self._html_404(request.path)

    @staticmethod
    def _html_404(path: str) -> web.Response:
        page = f"<!DOCTYPE html><title>Error 404 (Not Found)!!1</title><p>The requested URL <code>{path}</code>"
        return web.Response(status=404, text=page + " was not found on this server.</p>", content_type="text/html")

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        await self._read(request)
        return self._auth(request) or _json({"models": [self._model_object(m) for m in self.models]})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        await self._read(request)
        model = request.match_info["model"]
        if (refused := self._auth(request)) is not None:
            return refused
        if model not in self.models:
            return error_response(404, f"models/{model} is not found for API version v1beta.")
        return _json(self._model_object(model))

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        embedding = "embedding" in model
        return {
            "name": f"models/{model}",
            "version": "001",
            "displayName": model,
            "inputTokenLimit": 2048 if embedding else 1048576,
            "outputTokenLimit": 1 if embedding else 65536,
            "supportedGenerationMethods": ["embedContent", "batchEmbedContents"]
            if embedding
            else ["generateContent", "countTokens"],
        }

    async def _post_model(self, request: web.Request) -> web.StreamResponse:
        body, bad_json = await self._read(request)
        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent", "embedContent", "batchEmbedContents"):
            return self._html_404(request.path)
        if (refused := self._auth(request)) is not None:
            return refused
        try:
            faults = resolve_faults({k.lower(): v for k, v in request.headers.items()}, model)
        except _BadRequest as exc:
            return error_response(400, str(exc))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.close:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)
        if faults.status is not None:
            return self._injected(faults.status)
        if not self._known(model, method):
            return self._not_found_model(model, method)
        if bad_json:
            return error_response(400, "Invalid JSON payload received. Unexpected token.")
        try:
            if method == "batchEmbedContents":
                return self._batch_embed(model, body)
            if method == "embedContent":
                return self._embed(model, body)
            validate_generate(body, model)
        except _BadRequest as exc:
            return error_response(400, str(exc))
        except (AttributeError, KeyError, TypeError) as exc:  # a shape the real API would refuse too
            return error_response(400, f"Invalid JSON payload received. {exc}")
        answer = self._answer(model, body, faults)
        if method == "streamGenerateContent":
            return await self._stream(request, faults, answer)
        return _json(answer.whole())

    def _batch_embed(self, model: str, body: Any) -> web.Response:
        requests = _check_keys(body, {"requests"}, "")["requests"]
        vectors = []
        for i, item in enumerate(requests):
            _check_keys(item, {"model", "content", "taskType", "title", "outputDimensionality"}, f"requests[{i}]")
            if item.get("model") != f"models/{model}":
                raise _BadRequest(f"* BatchEmbedContentsRequest.requests[{i}].model: must match the URL model")
            vectors.append(self._vector(model, item))
        return _json({"embeddings": [{"values": v} for v in vectors]})

    def _embed(self, model: str, body: Any) -> web.Response:
        _check_keys(body, {"model", "content", "taskType", "title", "outputDimensionality"}, "")
        return _json({"embedding": {"values": self._vector(model, body)}})

    @staticmethod
    def _vector(model: str, item: Mapping[str, Any]) -> list[float]:
        dims = item.get("outputDimensionality", EMBEDDING_DIMS)
        if not isinstance(dims, int) or dims < 1:
            raise _BadRequest("* EmbedContentRequest.output_dimensionality: must be positive")
        return embedding_for(_text(item["content"]["parts"]), model=model, dims=dims)

    def _answer(self, model: str, body: dict[str, Any], faults: Faults) -> _Answer:
        contents = body["contents"]
        config = body.get("generationConfig") or {}
        prompt = count_prompt_tokens(body)
        answer = _Answer(
            model=model, response_id=uuid.uuid4().hex[:22], prompt=prompt, cached=min(faults.cached, prompt)
        )
        if faults.blocked:
            answer.blocked = True
            return answer
        if faults.finish:
            answer.finish = faults.finish
            return answer
        if (config.get("thinkingConfig") or {}).get("includeThoughts"):
            answer.thought = f"thinking about: {' '.join(_words(last_user_text(contents))[:MAX_ECHO_WORDS])}".rstrip()
        calls = calls_for(body)
        if calls:
            answer.calls = calls
            answer.signed = is_gemini3(model)
            return answer
        words = _words(reply_for(contents))
        text = " ".join(words)
        for stop in config.get("stopSequences") or ():
            if stop and stop in text:
                words = _words(text[: text.index(stop)])
        limit = config.get("maxOutputTokens")
        if isinstance(limit, int) and 0 < limit < len(words):
            words = words[:limit]
            answer.finish = "MAX_TOKENS"
        answer.words = words
        answer.stream_error = faults.stream_error
        return answer

    async def _stream(self, request: web.Request, faults: Faults, answer: _Answer) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        delay = self.chunk_delay if faults.chunk_delay is None else faults.chunk_delay
        events = [b"data: " + orjson.dumps(event) + b"\r\n\r\n" for event in answer.events()]
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


@dataclass
class _Answer:
    """One deterministic answer, rendered whole or as a stream of ``GenerateContentResponse`` events."""

    model: str
    response_id: str
    prompt: int
    cached: int = 0
    words: list[str] | None = None
    thought: str | None = None
    calls: list[tuple[str, dict[str, Any]]] | None = None
    signed: bool = False
    finish: str = "STOP"
    blocked: bool = False
    stream_error: bool = False

    def _usage(self, done: bool) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": self.prompt}
        if done and not self.blocked:
            completion = len(self.words or ()) + sum(
                len(_words(f"{n} {orjson.dumps(a).decode()}")) for n, a in self.calls or ()
            )
            usage["candidatesTokenCount"] = completion
            if self.thought:
                usage["thoughtsTokenCount"] = len(_words(self.thought))
        usage["totalTokenCount"] = (
            self.prompt + usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
        )
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.prompt}]
        if self.cached:
            usage["cachedContentTokenCount"] = self.cached
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.cached}]
        return usage

    def _response(self, parts: list[dict[str, Any]], *, done: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.blocked:
            out["promptFeedback"] = {
                "blockReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
            }
        else:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}} if parts else {}
            if done:
                candidate["finishReason"] = self.finish
            candidate["index"] = 0
            out["candidates"] = [candidate]
        out["usageMetadata"] = self._usage(done)
        out["modelVersion"] = self.model
        out["responseId"] = self.response_id
        return out

    def _call_parts(self) -> list[dict[str, Any]]:
        parts = []
        for index, (name, args) in enumerate(self.calls or ()):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if self.signed and index == 0:
                part["thoughtSignature"] = signature_for(name, args)
            parts.append(part)
        return parts

    def _thought_parts(self) -> list[dict[str, Any]]:
        return [{"text": self.thought, "thought": True}] if self.thought else []

    def whole(self) -> dict[str, Any]:
        parts = self._thought_parts() + self._call_parts()
        if self.words is not None:
            parts.append({"text": " ".join(self.words)})
        return self._response(parts, done=True)

    def events(self) -> list[dict[str, Any]]:
        if self.blocked or (self.words is None and not self.calls):
            return [self._response(self._thought_parts(), done=True)]
        pieces: list[list[dict[str, Any]]] = [[p] for p in self._call_parts()]
        pieces += [[{"text": w if i == 0 else f" {w}"}] for i, w in enumerate(self.words or ())]
        if not pieces:
            pieces = [[{"text": ""}]]
        pieces[0] = self._thought_parts() + pieces[0]
        events = [self._response(parts, done=i == len(pieces) - 1) for i, parts in enumerate(pieces)]
        if self.stream_error:
            events = [events[0], error_body(500, _STATUS_NAMES[500][1])]
        return events


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Gemini upstream for Alephant tests and benchmarks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9998)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--chunk-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    fake = FakeGemini(api_key=args.api_key, chunk_delay=args.chunk_delay, host=args.host, port=args.port)
    fake.start()
    try:
        print(f"FakeGemini listening on {fake.base_url} (api key {fake.api_key!r}); Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
