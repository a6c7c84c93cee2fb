"""The built-in ``mock`` provider: an in-process transport that answers in the OpenAI wire format.

It makes ``alephant serve`` useful with no network and no keys (demos, tests, benchmarks of the gateway
itself), and it exercises the same adapter path as a real OpenAI-compatible upstream.

Models:
    ``mock-1``               a deterministic echo: "Mock reply to: <last user message>"
    ``mock-embed-1``         deterministic 8-dimensional embeddings
    ``mock-error-<status>``  answers with that HTTP status and an OpenAI error body (429 adds ``retry-after``)
    ``mock-slow-<ms>``       like ``mock-1``, after waiting that many milliseconds
Any other model is a 404 ``model_not_found``, as OpenAI answers.

Token counts are whitespace-separated words (plus 3 per message for the prompt), so tests can predict them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from .errors import TransportTimeout
from .types import UpstreamRequest, UpstreamResponse

__all__ = ["MockTransport", "mock_reply"]

_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream"}
_CHAT_MODELS = ("mock-1",)
_EMBEDDING_MODELS = ("mock-embed-1",)
_EMBEDDING_DIMS = 8


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _words(text: str) -> int:
    return len(text.split())


def mock_reply(messages: list[Any]) -> str:
    """The mock's answer to a conversation: an echo of the last user message."""
    last = next(
        (_text_of(m.get("content")) for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"),
        "",
    )
    return f"Mock reply to: {last}".strip()


def _error(status: int, message: str, code: str, type_: str = "invalid_request_error") -> UpstreamResponse:
    body = orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})
    headers = dict(_JSON)
    if status == 429:
        headers["retry-after"] = "1"
    return UpstreamResponse(status=status, headers=headers, body=body)


class MockTransport:
    """A ``Transport`` that never leaves the process."""

    def __init__(self, *, latency_ms: float = 0.0, chunk_delay_ms: float = 0.0) -> None:
        self._latency = latency_ms / 1000
        self._chunk_delay = chunk_delay_ms / 1000

    async def aclose(self) -> None:
        return None

    async def send(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _error(400, "We could not parse the JSON body of your request.", "invalid_json")
        model = str(body.get("model", ""))
        delay = self._latency
        if model.startswith("mock-error-") and model[11:].isdigit():
            status = int(model[11:])
            return _error(status, f"Injected mock failure with status {status}.", "mock_error", "server_error")
        if model.startswith("mock-slow-") and model[10:].isdigit():
            delay += int(model[10:]) / 1000
            model_ok = True
        else:
            model_ok = model in (_EMBEDDING_MODELS if request.url.endswith("/embeddings") else _CHAT_MODELS)
        if not model_ok:
            return _error(
                404,
                f"The model `{model}` does not exist on the mock provider. GET /v1/models lists the models.",
                "model_not_found",
            )
        if delay:
            if delay >= timeout:
                await asyncio.sleep(timeout)
                raise TransportTimeout(f"mock did not answer within {timeout:g}s", provider=request.provider_id)
            await asyncio.sleep(delay)
        if request.url.endswith("/embeddings"):
            return self._embeddings(body)
        return self._chat(body)

    def _chat(self, body: dict[str, Any]) -> UpstreamResponse:
        messages = body.get("messages") or []
        reply = mock_reply(messages)
        prompt_tokens = sum(_words(_text_of(m.get("content"))) + 3 for m in messages if isinstance(m, dict))
        completion_tokens = _words(reply)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and 0 < max_tokens < completion_tokens:
            reply = " ".join(reply.split()[:max_tokens])
            completion_tokens, finish = max_tokens, "length"
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        created = int(time.time())
        ident = "chatcmpl-mock" + hashlib.sha1(reply.encode()).hexdigest()[:20]
        model = body.get("model")
        if not body.get("stream"):
            return UpstreamResponse(
                status=200,
                headers=_JSON,
                body=orjson.dumps(
                    {
                        "id": ident,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": reply, "refusal": None},
                                "logprobs": None,
                                "finish_reason": finish,
                            }
                        ],
                        "usage": usage,
                    }
                ),
            )
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return UpstreamResponse(
            status=200,
            headers=_SSE,
            chunks=self._stream(ident, created, model, reply, finish, usage if with_usage else None),
        )

    async def _stream(
        self, ident: str, created: int, model: Any, reply: str, finish: str, usage: dict[str, Any] | None
    ) -> AsyncIterator[bytes]:
        base: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        if usage is not None:
            base["usage"] = None

        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

        yield event({"role": "assistant", "content": ""})
        for index, word in enumerate(reply.split()):
            if self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield event({"content": word if index == 0 else " " + word})
        yield event({}, finish)
        if usage is not None:
            yield b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    def _embeddings(self, body: dict[str, Any]) -> UpstreamResponse:
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
        if not inputs:
            return _error(400, "'input' must be a string or a list of strings.", "invalid_input")
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        tokens = 0
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item) if isinstance(item, list) else ""
            tokens += max(1, _words(text))
            digest = hashlib.sha256(text.encode()).digest()
            vector = [(b - 128) / 128 for b in digest[:_EMBEDDING_DIMS]]
            embedding: Any = (
                base64.b64encode(struct.pack(f"<{_EMBEDDING_DIMS}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return UpstreamResponse(
            status=200,
            headers=_JSON,
            body=orjson.dumps(
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            ),
        )
