"""Builders for the canonical wire (OpenAI Chat Completions), shared by every translating adapter.

Adapters for non-OpenAI protocols turn provider answers into these exact shapes, so every client sees one
response format whatever the upstream spoke. Example, in a stream translator::

    out = ChunkWriter(id="chatcmpl-abc", model="claude-sonnet-4-5", include_usage=call.client_wants_usage)
    events = [out.role(), out.content("Hel"), out.content("lo"), out.finish("stop")]
    events += out.usage_and_done(usage)
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from .types import UpstreamResponse, Usage

__all__ = [
    "FINISH_REASONS",
    "ChunkWriter",
    "completion_body",
    "embeddings_body",
    "error_json",
    "error_text",
    "usage_object",
]

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter")


def error_json(response: UpstreamResponse) -> Any:
    """An upstream error body parsed as JSON, or None when it is not JSON (a proxy's HTML page, say)."""
    try:
        return orjson.loads(response.body or b"")
    except orjson.JSONDecodeError:
        return None


def error_text(response: UpstreamResponse) -> str:
    """An error body that is not JSON, as readable text (bounded), or the bare status."""
    return (response.body or b"").decode("utf-8", "replace").strip()[:500] or f"HTTP {response.status}"


def usage_object(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def completion_body(
    *,
    id: str,
    model: str,
    content: str | None,
    finish_reason: str,
    usage: Usage,
    tool_calls: list[dict[str, Any]] | None = None,
    reasoning_content: str | None = None,
    created: int | None = None,
) -> bytes:
    """A whole ``chat.completion``. ``tool_calls`` items are ``{"id", "type": "function", "function": {...}}``."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning_content:
        message["reasoning_content"] = reasoning_content
    return orjson.dumps(
        {
            "id": id,
            "object": "chat.completion",
            "created": created if created is not None else int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage_object(usage),
        }
    )


def embeddings_body(*, model: str, vectors: list[list[float]], usage: Usage) -> bytes:
    return orjson.dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": model,
            "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
        }
    )


class ChunkWriter:
    """Writes ``chat.completion.chunk`` SSE events, one call per event, for one streamed answer."""

    __slots__ = ("_base", "_include_usage")

    def __init__(self, *, id: str, model: str, include_usage: bool, created: int | None = None) -> None:
        self._base: dict[str, Any] = {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created if created is not None else int(time.time()),
            "model": model,
        }
        self._include_usage = include_usage

    def _event(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + orjson.dumps({**self._base, "choices": [choice]}) + b"\n\n"

    def role(self) -> bytes:
        return self._event({"role": "assistant", "content": ""})

    def content(self, text: str) -> bytes:
        return self._event({"content": text})

    def reasoning(self, text: str) -> bytes:
        """Thinking/reasoning text, as ``reasoning_content`` (the field DeepSeek and others use)."""
        return self._event({"reasoning_content": text})

    def tool_call_start(self, index: int, call_id: str, name: str, arguments: str = "") -> bytes:
        call = {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        return self._event({"tool_calls": [call]})

    def tool_call_arguments(self, index: int, fragment: str) -> bytes:
        return self._event({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def finish(self, reason: str) -> bytes:
        return self._event({}, reason)

    def usage_and_done(self, usage: Usage) -> list[bytes]:
        """The usage chunk (only when the client asked for it) and the ``[DONE]`` terminator."""
        out = []
        if self._include_usage:
            out.append(b"data: " + orjson.dumps({**self._base, "choices": [], "usage": usage_object(usage)}) + b"\n\n")
        out.append(b"data: [DONE]\n\n")
        return out

    def error(self, message: str, code: str = "upstream_error") -> bytes:
        """An error event mid-stream (after the 200 was sent), in OpenAI's shape."""
        body = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
        return b"data: " + orjson.dumps(body) + b"\n\n"
