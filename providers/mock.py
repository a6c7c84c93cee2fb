"""The built-in ``mock`` provider: an in-process transport that answers in the OpenAI wire format.

It makes ``alephant serve`` useful with no network and no keys (demos, tests, benchmarks of the gateway
itself), and it exercises the same adapter path as a real OpenAI-compatible upstream.

Models:
    ``mock-1``               a deterministic echo: "Mock reply to: <last user message>"
    ``mock-embed-1``         deterministic 8-dimensional embeddings
    ``mock-error-<status>``  answers with that HTTP status and an OpenAI error body (429 adds ``retry-after``)
    ``mock-slow-<ms>``       like ``mock-1``, after waiting that many milliseconds
Any other model is a 404 ``model_not_found``, as OpenAI answers.

Tool calls are scripted: when the request has ``tools`` and the last user message contains
``[[tool:NAME {"json": "arguments"}]]`` the mock calls that tool (several directives: parallel calls; streamed
as OpenAI streams them, the arguments in fragments). When the conversation ends with tool results, the mock
answers "Tool results: <result> | <result>".

Token counts are whitespace-separated words (plus 3 per message for the prompt), so tests can predict them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
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
    """The mock's answer: after tool results, the results; otherwise an echo of the last user message."""
    results: list[str] = []
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            continue  # some clients (Claude Code) put system messages after the turn
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.insert(0, _text_of(message.get("content")))
    if results:
        return "Tool results: " + " | ".join(results)
    last = next(
        (_text_of(m.get("content")) for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"),
        "",
    )
    return f"Mock reply to: {last}".strip()


_TOOL_DIRECTIVE = re.compile(r"\[\[tool:([A-Za-z0-9_.:-]+)(?:\s+(\{.*?\}))?\]\]", re.S)


def _scripted_calls(messages: list[Any]) -> list[dict[str, Any]]:
    """Tool calls the last user message scripts with ``[[tool:NAME {json args}]]`` (several for parallel calls).

    Only a user turn scripts calls: after the tool results come back the mock answers in text, so a client's
    tool loop (call -> result -> answer) ends.
    """
    turns = [m for m in messages if isinstance(m, dict) and m.get("role") not in ("system", "developer")]
    last = turns[-1] if turns else None
    if last is None or last.get("role") != "user":
        return []
    calls = []
    for index, match in enumerate(_TOOL_DIRECTIVE.finditer(_text_of(last.get("content")))):
        arguments = match.group(2) or "{}"
        digest = hashlib.sha1(f"{index}{match.group(0)}".encode()).hexdigest()[:24]
        calls.append(
            {"id": f"call_{digest}", "type": "function", "function": {"name": match.group(1), "arguments": arguments}}
        )
    return calls


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
        calls = _scripted_calls(messages) if body.get("tools") else []
        reply = "" if calls else mock_reply(messages)
        prompt_tokens = sum(_words(_text_of(m.get("content"))) + 3 for m in messages if isinstance(m, dict))
        completion_tokens = _words(reply) + sum(_words(c["function"]["arguments"]) + 1 for c in calls)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "tool_calls" if calls else "stop"
        if not calls and isinstance(max_tokens, int) and 0 < max_tokens < completion_tokens:
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
        ident = "chatcmpl-mock" + hashlib.sha1((reply + str(calls)).encode()).hexdigest()[:20]
        model = body.get("model")
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            return UpstreamResponse(
                status=200,
                headers=_JSON,
                body=orjson.dumps(
                    {
                        "id": ident,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [choice],
                        "usage": usage,
                    }
                ),
            )
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return UpstreamResponse(
            status=200,
            headers=_SSE,
            chunks=self._stream(ident, created, model, reply, calls, finish, usage if with_usage else None),
        )

    async def _stream(
        self,
        ident: str,
        created: int,
        model: Any,
        reply: str,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, Any] | None,
    ) -> AsyncIterator[bytes]:
        base: dict[str, Any] = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        if usage is not None:
            base["usage"] = None

        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return b"data: " + orjson.dumps({**base, "choices": [choice]}) + b"\n\n"

        yield event({"role": "assistant", "content": "" if not calls else None})
        for index, word in enumerate(reply.split()):
            if self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield event({"content": word if index == 0 else " " + word})
        for index, call in enumerate(calls):
            # As OpenAI streams tool calls: id and name first, then the arguments in fragments.
            start = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield event({"tool_calls": [start]})
            arguments = call["function"]["arguments"]
            step = max(1, len(arguments) // 3)
            for at in range(0, len(arguments), step):
                if self._chunk_delay:
                    await asyncio.sleep(self._chunk_delay)
                yield event({"tool_calls": [{"index": index, "function": {"arguments": arguments[at : at + step]}}]})
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
