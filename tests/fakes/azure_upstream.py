"""A protocol-faithful fake of the Azure OpenAI data-plane API, served on a real localhost socket.

It reuses :class:`~tests.fakes.openai_upstream.FakeOpenAI`'s server machinery (background thread, socket,
request recording, fault controls) and its deterministic text; the routes, auth and bodies are Azure's::

    with FakeAzureOpenAI() as fake:
        client = AzureOpenAI(azure_endpoint=fake.base_url, api_key=fake.api_key, api_version="2024-10-21")
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])   # model = the deployment name
        assert fake.last_request.query["api-version"] == "2024-10-21"
        assert fake.last_request.header("api-key") == fake.api_key

Endpoints (``base_url`` is the resource endpoint, ``http://127.0.0.1:PORT``):

* ``POST /openai/deployments/{deployment}/chat/completions?api-version=V`` and ``.../embeddings`` -- the
  deployment comes from the URL; a missing ``api-version`` is a 404 ``Resource not found`` and a malformed
  one a 400 ``API version not supported``, as on Azure.
* ``POST /openai/v1/chat/completions`` and ``/openai/v1/embeddings`` -- the v1 API: the deployment is the
  body's ``model``; ``api-version`` is optional.
* Auth: ``api-key: <key>`` or ``Authorization: Bearer <key>`` (an Entra ID token); otherwise 401.
* Anything else: 404 ``Resource not found``.

Bodies are OpenAI's plus Azure's additions: ``prompt_filter_results`` on the answer, ``content_filter_results``
on each choice, and when streaming a first chunk with ``"choices": []``, empty ``id``/``model``/``object``,
``created: 0`` and the prompt filter results. ``model`` in answers is the deployment's underlying model
version (``DEFAULT_DEPLOYMENTS``). ``stream_options.include_usage`` adds ``"usage": null`` to every chunk and a
final ``"choices": []`` usage chunk, as OpenAI does.

Deterministic behaviour (texts and token counts as in the OpenAI fake, see its docstring):

* ``"call tool"`` in the last user message with ``tools`` -> a call of the first tool with arguments
  ``{"input": <text>}``; ``"call all tools"`` -> parallel calls of every tool; streamed as OpenAI streams them
  (id/name first, then 8-character argument fragments).
* last message a ``tool`` result -> ``"fake reply to tool result: <content>"``.
* ``"trigger filter"`` -> the completion is cut after two words with ``finish_reason: "content_filter"`` and
  ``content_filter_results.violence.filtered: true``.
* ``"filter prompt"`` -> 400 ``content_filter`` error with ``innererror.content_filter_result``.

Errors: ``{"error": {"code", "message"}}``. Fault injection: the OpenAI fake's headers and deployment-name
segments (``fake-status-429``, ``fake-delay-2.5``, ``fake-close``, ``fake-close-after-3``,
``fake-chunk-delay-0.1``). Injected 429s carry ``retry-after: 1`` and ``retry-after-ms: 850``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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

__all__ = ["DEFAULT_API_KEY", "DEFAULT_DEPLOYMENTS", "FakeAzureOpenAI", "azure_reply"]

DEFAULT_API_KEY = "azure-fake-key-0123456789abcdef"
DEFAULT_DEPLOYMENTS: Mapping[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-11-20",
    "text-embedding-3-small": "text-embedding-3-small",
}
"""Deployment name -> the model version Azure reports in answers."""
FAULT_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_FINGERPRINT = "fp_azure000001"
_API_VERSION_RE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?|v1|preview|latest")
_SAFE = {"filtered": False, "severity": "safe"}
_COMPLETION_SAFE = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_COMPLETION_FILTERED = {**_COMPLETION_SAFE, "violence": {"filtered": True, "severity": "medium"}}
_PROMPT_SAFE = {**_COMPLETION_SAFE, "jailbreak": {"filtered": False, "detected": False}}
_PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": _PROMPT_SAFE}]
_UNAUTHORIZED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
_DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 "
    "minutes, please wait a moment and try again."
)
_PROMPT_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please "
    "modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_INJECTED_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("401", _UNAUTHORIZED),
    403: ("403", "Public access is disabled. Please configure private endpoint."),
    404: ("DeploymentNotFound", _DEPLOYMENT_NOT_FOUND),
    408: ("Timeout", "The operation was timeout."),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have "
        "exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second.",
    ),
    500: ("InternalServerError", "The server had an error while processing your request. Sorry about that!"),
    503: ("ServiceUnavailable", "The service is temporarily unable to process your request. Please try again later."),
}


def _response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    all_headers = {
        "apim-request-id": str(uuid.uuid4()),
        "x-request-id": str(uuid.uuid4()),
        "x-ms-region": "East US",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "99000",
        **(headers or {}),
    }
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json", headers=all_headers)


def azure_error(http_status: int, code: str | None, message: str, **extra: Any) -> web.Response:
    """Azure's own error shape; ``extra`` adds fields some errors carry (``param``, ``innererror``...)."""
    headers = {"retry-after": "1", "retry-after-ms": "850"} if http_status == 429 else None
    return _response({"error": {"code": code, "message": message, **extra}}, status=http_status, headers=headers)


def _invalid(message: str, param: str | None = None, code: str | None = None) -> web.Response:
    """Validation errors come from the OpenAI service behind Azure, in OpenAI's exact shape."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return _response(body, status=400)


def azure_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The fake's text answer before ``max_tokens`` and the content filter, so tests can compute it."""
    if messages and messages[-1].get("role") == "tool":
        return f"fake reply to tool result: {' '.join(_words(message_text(messages[-1])))}"
    return reply_for(messages)


@dataclass
class _Answer:
    """What one chat request is answered with, before it is shaped as a body or as chunks."""

    words: list[str]
    calls: list[tuple[str, str, str]]  # (id, name, arguments JSON)
    finish_reason: str
    filtered: bool
    usage: dict[str, Any]


class FakeAzureOpenAI(FakeOpenAI):
    """The fake Azure OpenAI resource; ``base_url`` is the resource endpoint ``AzureOpenAI`` takes."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        deployments: Mapping[str, str] = DEFAULT_DEPLOYMENTS,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(api_key=api_key, models=tuple(deployments), chunk_delay=chunk_delay, host=host, port=port)
        self.deployments = dict(deployments)

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError("FakeAzureOpenAI is not running; use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}"

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._embeddings)
        app.router.add_post("/openai/v1/chat/completions", self._chat)
        app.router.add_post("/openai/v1/embeddings", self._embeddings)
        app.router.add_route("*", "/{tail:.*}", self._resource_not_found)
        return app

    async def _resource_not_found(self, request: web.Request) -> web.StreamResponse:
        self._record(request, await request.read(), None)
        return azure_error(404, "404", "Resource not found")

    # ------------------------------------------------------------------ shared prelude

    async def _azure_prelude(self, request: web.Request) -> tuple[Faults, dict[str, Any], str] | web.StreamResponse:
        """Record, check api-version and key, apply faults, find the deployment; a response ends the request."""
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self._record(request, raw, body)
        deployment = request.match_info.get("deployment")
        version = request.query.get("api-version")
        if deployment is not None and version is None:
            return azure_error(404, "404", "Resource not found")
        if version is not None and not _API_VERSION_RE.fullmatch(version):
            return azure_error(400, "BadRequest", "API version not supported")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        bearer = token.strip() if scheme.lower() == "bearer" else None
        if request.headers.get("api-key") != self.api_key and bearer != self.api_key:
            return azure_error(401, "401", _UNAUTHORIZED)
        if not isinstance(body, dict):
            return _invalid("We could not parse the JSON body of your request.")
        if deployment is None:  # the v1 API names the deployment in the body
            deployment = body.get("model") if isinstance(body.get("model"), str) else None
            if not deployment:
                return _invalid("you must provide a model parameter", param="model")
        try:
            faults = resolve_faults({k.lower(): v for k, v in request.headers.items()}, deployment)
        except _BadControl as exc:
            return _invalid(str(exc))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.close:
            _drop_connection(request)
            return web.Response(status=204)
        if faults.status is not None:
            code, message = _INJECTED_ERRORS.get(faults.status, (str(faults.status), f"Error {faults.status}."))
            return azure_error(faults.status, code, f"{message} (injected by FakeAzureOpenAI)")
        if deployment not in self.deployments and not _MODEL_CONTROLS_RE.fullmatch(deployment):
            return azure_error(404, "DeploymentNotFound", _DEPLOYMENT_NOT_FOUND)
        return faults, body, deployment

    def _model(self, deployment: str) -> str:
        return self.deployments.get(deployment, FAULT_MODEL)

    # ------------------------------------------------------------------ embeddings

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        prelude = await self._azure_prelude(request)
        if not isinstance(prelude, tuple):
            return prelude
        _, body, deployment = prelude
        texts = self._embedding_inputs(body.get("input"))
        if texts is None:
            return _invalid("'$.input' is invalid.", param="input")
        dims = body.get("dimensions", EMBEDDING_DIMS)
        encoding = body.get("encoding_format", "float")
        model = self._model(deployment)
        data = []
        for index, (text, _tokens) in enumerate(texts):
            vector = embedding_for(text, model=deployment, dims=dims)
            embedding: list[float] | str = (
                base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode("ascii") if encoding == "base64" else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(count for _, count in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return _response({"object": "list", "data": data, "model": model, "usage": usage})

    # ------------------------------------------------------------------ chat

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        prelude = await self._azure_prelude(request)
        if not isinstance(prelude, tuple):
            return prelude
        faults, body, deployment = prelude
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return _invalid("Invalid 'messages': expected a non-empty array of objects.", param="messages")
        stream = body.get("stream") is True
        stream_options = body.get("stream_options")
        if stream_options is not None and not stream:
            return _invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
        text = last_user_text(messages).lower()
        if "filter prompt" in text:
            result = {**_PROMPT_SAFE, "violence": {"filtered": True, "severity": "high"}}
            return azure_error(
                400,
                "content_filter",
                _PROMPT_FILTERED,
                param="prompt",
                type=None,
                status=400,
                innererror={"code": "ResponsibleAIPolicyViolation", "content_filter_result": result},
            )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        answer = self._answer(body, messages, completion_id)
        model = self._model(deployment)
        created = int(time.time())
        if stream:
            include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
            return await self._stream(request, faults, completion_id, created, model, answer, include_usage)
        message: dict[str, Any] = {"content": " ".join(answer.words) or None, "refusal": None, "role": "assistant"}
        if answer.calls:
            message["tool_calls"] = [
                {"function": {"arguments": arguments, "name": name}, "id": call_id, "type": "function"}
                for call_id, name, arguments in answer.calls
            ]
        choice = {
            "content_filter_results": _COMPLETION_FILTERED if answer.filtered else _COMPLETION_SAFE,
            "finish_reason": answer.finish_reason,
            "index": 0,
            "logprobs": None,
            "message": message,
        }
        return _response(
            {
                "choices": [choice],
                "created": created,
                "id": completion_id,
                "model": model,
                "object": "chat.completion",
                "prompt_filter_results": _PROMPT_FILTER_RESULTS,
                "system_fingerprint": SYSTEM_FINGERPRINT,
                "usage": answer.usage,
            }
        )

    @staticmethod
    def _answer(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], completion_id: str) -> _Answer:
        prompt_tokens = count_prompt_tokens(messages)
        text = last_user_text(messages)
        lowered = text.lower()
        tools = body.get("tools")
        names = [
            t["function"]["name"]
            for t in tools or ()
            if isinstance(t, dict)
            and isinstance(t.get("function"), dict)
            and isinstance(t["function"].get("name"), str)
        ]
        wants_call = messages[-1].get("role") == "user" and ("call tool" in lowered or "call all tools" in lowered)
        calls: list[tuple[str, str, str]] = []
        words: list[str] = []
        filtered = False
        if names and wants_call and body.get("tool_choice") != "none":
            chosen = names if "call all tools" in lowered else names[:1]
            arguments = orjson.dumps({"input": text}).decode()
            calls = [(f"call_{completion_id[-20:]}{i}", name, arguments) for i, name in enumerate(chosen)]
            finish_reason = "tool_calls"
            completion_tokens = sum(len(_words(f"{name} {arguments}")) for _, name, arguments in calls)
        else:
            words = _words(azure_reply(messages))
            finish_reason = "stop"
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
            if "trigger filter" in lowered:
                words, finish_reason, filtered = words[:2], "content_filter", True
            elif isinstance(limit, int) and 0 < limit < len(words):
                words, finish_reason = words[:limit], "length"
            completion_tokens = len(words)
        usage = {
            "completion_tokens": completion_tokens,
            "completion_tokens_details": {
                "accepted_prediction_tokens": 0,
                "audio_tokens": 0,
                "reasoning_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return _Answer(words, calls, finish_reason, filtered, usage)

    async def _stream(
        self,
        request: web.Request,
        faults: Faults,
        completion_id: str,
        created: int,
        model: str,
        answer: _Answer,
        include_usage: bool,
    ) -> web.StreamResponse:
        def chunk(delta: dict[str, Any], finish: str | None = None, filters: Any = None) -> dict[str, Any]:
            choice = {
                "content_filter_results": {} if filters is None else filters,
                "delta": delta,
                "finish_reason": finish,
                "index": 0,
                "logprobs": None,
            }
            out: dict[str, Any] = {
                "choices": [choice],
                "created": created,
                "id": completion_id,
                "model": model,
                "object": "chat.completion.chunk",
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
            if include_usage:
                out["usage"] = None
            return out

        prompt_chunk = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        chunks: list[dict[str, Any]] = [{**prompt_chunk, "prompt_filter_results": _PROMPT_FILTER_RESULTS}]
        chunks.append(chunk({"content": "", "refusal": None, "role": "assistant"}))
        for i, word in enumerate(answer.words):
            chunks.append(chunk({"content": word if i == 0 else f" {word}"}, filters=_COMPLETION_SAFE))
        for index, (call_id, name, arguments) in enumerate(answer.calls):
            start = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            chunks.append(chunk({"tool_calls": [start]}))
            for at in range(0, len(arguments), 8):
                fragment = {"index": index, "function": {"arguments": arguments[at : at + 8]}}
                chunks.append(chunk({"tool_calls": [fragment]}))
        chunks.append(chunk({}, answer.finish_reason, _COMPLETION_FILTERED if answer.filtered else None))
        if include_usage:
            last = chunk({})
            last["choices"], last["usage"] = [], answer.usage
            chunks.append(last)

        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream; charset=utf-8", "apim-request-id": str(uuid.uuid4())},
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
                await response.write(event)
            await response.write_eof()
        except ConnectionError:
            pass
        return response
