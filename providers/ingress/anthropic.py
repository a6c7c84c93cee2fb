"""The Anthropic Messages dialect (``POST /v1/messages``): Claude Code and the anthropic SDKs speak it.

Ingest maps a Messages request onto the canonical (OpenAI Chat Completions) request:

    system (string or text blocks, cache_control ignored), role "system" messages  -> system message
    text / image (base64 or url) blocks                                             -> content parts
    assistant tool_use blocks                                                       -> assistant tool_calls
    user tool_result blocks                                                         -> tool messages, in order
    tools [{name, description, input_schema}]                                       -> function tools
    tool_choice auto | any | tool | none, disable_parallel_tool_use                 -> tool_choice, parallel_tool_calls
    max_tokens, stop_sequences, temperature, top_p, metadata.user_id, stream        -> the OpenAI equivalents

Dropped, because the canonical form cannot carry them to a non-Anthropic upstream: ``thinking`` blocks and the
``thinking`` option, ``top_k``, ``cache_control`` marks, Anthropic server tools (web search, code execution,
...), and ``document``/``search_result`` blocks other than their text.

The answer goes back as a Messages response or as Messages SSE (``message_start``, ``ping``,
``content_block_start/delta/stop`` for text, thinking and tool_use with ``input_json_delta``, ``message_delta``
with the stop reason and usage, ``message_stop``; ``error`` events for failures mid-stream).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..types import Endpoint, Usage
from . import DialectError, Ingested
from .openai import type_name

__all__ = ["AnthropicDialect", "AnthropicStream"]

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and "text" in b)
    return ""


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif isinstance(source, dict) and source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        raise DialectError(f"{where}.source must be a base64 or url image source.", param=f"{where}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _messages(raw: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
            raise DialectError(f"{where} must be an object with role 'user' or 'assistant'.", param=where)
        role, content = message["role"], message.get("content")
        if role == "system":
            out.append({"role": "system", "content": _text_of(content)})
            continue
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise DialectError(
                f"{where}.content must be a string or an array of content blocks, got {type_name(content)}.",
                param=f"{where}.content",
            )
        parts: list[dict[str, Any]] = []
        tool_calls: list[dict[str, Any]] = []
        for j, block in enumerate(content):
            at = f"{where}.content[{j}]"
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                parts.append({"type": "text", "text": str(block.get("text", ""))})
            elif kind == "image":
                parts.append(_image_part(block, at))
            elif kind in ("document", "search_result"):
                text = _text_of(block.get("content")) or str((block.get("source") or {}).get("data", ""))
                if text:
                    parts.append({"type": "text", "text": text})
            elif kind == "tool_use" and role == "assistant":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                call = {"name": block.get("name"), "arguments": arguments}
                tool_calls.append({"id": block.get("id"), "type": "function", "function": call})
            elif kind == "tool_result" and role == "user":
                if parts:  # keep the order: text before a tool result stays before it
                    out.append({"role": "user", "content": parts})
                    parts = []
                text = _text_of(block.get("content"))
                if block.get("is_error"):
                    text = f"Error: {text}"
                out.append({"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text})
            elif kind in ("thinking", "redacted_thinking"):
                continue
            else:
                raise DialectError(f"{at} has an unsupported block type {kind!r} for role {role}.", param=at)
        if role == "assistant":
            text = "".join(p["text"] for p in parts if p["type"] == "text")
            assistant: dict[str, Any] = {"role": "assistant", "content": text or None}
            if tool_calls:
                assistant["tool_calls"] = tool_calls
            out.append(assistant)
        elif parts:
            out.append({"role": "user", "content": parts})
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise DialectError(f"'tools' must be an array, got {type_name(raw)}.", param="tools")
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise DialectError(f"tools[{i}] must be an object with a string 'name'.", param=f"tools[{i}]")
        if tool.get("type") not in (None, "custom"):
            continue  # an Anthropic server tool: only an Anthropic upstream could run it
        function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object"}}
        if tool.get("description"):
            function["description"] = tool["description"]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(raw: Any, body: dict[str, Any]) -> None:
    if not isinstance(raw, dict):
        raise DialectError('\'tool_choice\' must be an object such as {"type": "auto"}.', param="tool_choice")
    kind = raw.get("type")
    if kind == "auto":
        body["tool_choice"] = "auto"
    elif kind == "any":
        body["tool_choice"] = "required"
    elif kind == "none":
        body["tool_choice"] = "none"
    elif kind == "tool" and isinstance(raw.get("name"), str):
        body["tool_choice"] = {"type": "function", "function": {"name": raw["name"]}}
    else:
        raise DialectError("'tool_choice.type' must be auto, any, tool (with a name) or none.", param="tool_choice")
    if raw.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False


def ingest_messages(data: dict[str, Any], *, require_max_tokens: bool) -> Ingested:
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise DialectError("'model' is required: a model name such as 'mock/mock-1'.", param="model")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise DialectError("'messages' is required: a non-empty array of messages.", param="messages")
    max_tokens = data.get("max_tokens")
    if require_max_tokens and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise DialectError("'max_tokens' is required: a positive integer.", param="max_tokens")
    messages = _messages(raw_messages)
    system = data.get("system")
    if system is not None:
        if not isinstance(system, str | list):
            raise DialectError("'system' must be a string or an array of text blocks.", param="system")
        messages.insert(0, {"role": "system", "content": _text_of(system)})
    body: dict[str, Any] = {"model": model, "messages": messages}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    for source, target in (("temperature", "temperature"), ("top_p", "top_p"), ("stop_sequences", "stop")):
        if data.get(source) is not None:
            body[target] = data[source]
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        body["user"] = metadata["user_id"]
    if data.get("tools"):
        tools = _tools(data["tools"])
        if tools:
            body["tools"] = tools
            if data.get("tool_choice") is not None:
                _tool_choice(data["tool_choice"], body)
    stream = data.get("stream") is True
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return Ingested(body=body, model=model, stream=stream, client_wants_usage=True, translated=True, client_body=data)


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": max(0, usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def _canonical_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    details = data.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0,
    )


def _message_id(canonical_id: Any) -> str:
    text = str(canonical_id or "")
    return text if text.startswith("msg_") else "msg_" + text.removeprefix("chatcmpl-")


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class AnthropicStream:
    """Canonical chat.completion.chunk events in, Anthropic Messages SSE events out, one event at a time."""

    def __init__(self, *, model: str) -> None:
        self.usage = Usage()
        self._model = model
        self._buffer = b""
        self._started = False
        self._block: str | None = None  # "text" | "thinking" | "tool_use"
        self._index = -1
        self._tool_blocks: dict[int, int] = {}  # canonical tool_call index -> our block index
        self._stop_reason = "end_turn"
        self._done = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *events, self._buffer = self._buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            payload = event.partition(b"data:")[2].strip()
            if payload == b"[DONE]":
                out.extend(self._finish())
            elif payload:
                out.extend(self._chunk(orjson.loads(payload)))
        return out

    def finish(self) -> list[bytes]:
        return self._finish()

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        message: dict[str, Any] = {
            "id": _message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [_sse("message_start", {"type": "message_start", "message": message}), _sse("ping", {"type": "ping"})]

    def _close(self) -> list[bytes]:
        if self._block is None:
            return []
        self._block = None
        return [_sse("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._index += 1
        self._block = kind
        out.append(
            _sse("content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block})
        )
        return out

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self._index if index is None else index
        return _sse("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = [] if self._started else self._start(chunk)
        if "error" in chunk and not chunk.get("choices"):
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            out.append(
                _sse("error", {"type": "error", "error": {"type": "api_error", "message": error.get("message")}})
            )
            return out
        if chunk.get("usage"):
            self.usage = _canonical_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                if self._block != "thinking":
                    out.extend(self._open("thinking", {"type": "thinking", "thinking": ""}))
                out.append(self._delta({"type": "thinking_delta", "thinking": delta["reasoning_content"]}))
            if delta.get("content"):
                if self._block != "text":
                    out.extend(self._open("text", {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                position = int(call.get("index", 0))
                function = call.get("function") or {}
                if position not in self._tool_blocks:
                    block: dict[str, Any] = {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_{position}",
                        "name": function.get("name"),
                        "input": {},
                    }
                    out.extend(self._open("tool_use", block))
                    self._tool_blocks[position] = self._index
                if function.get("arguments"):
                    fragment = {"type": "input_json_delta", "partial_json": function["arguments"]}
                    out.append(self._delta(fragment, self._tool_blocks[position]))
            if choice.get("finish_reason"):
                self._stop_reason = _STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _finish(self) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        out = [] if self._started else self._start({})
        out.extend(self._close())
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        out.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": _usage(self.usage)}))
        out.append(_sse("message_stop", {"type": "message_stop"}))
        return out


class AnthropicDialect:
    name = "anthropic"
    media_type = "application/json"

    def ingest(self, endpoint: Endpoint, data: dict[str, Any]) -> Ingested:
        return ingest_messages(data, require_max_tokens=True)

    def response(self, canonical: bytes, *, model: str, client: dict[str, Any] | None = None) -> bytes:
        data = orjson.loads(canonical)
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        content: list[dict[str, Any]] = []
        if message.get("reasoning_content"):
            content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
        if message.get("content"):
            content.append({"type": "text", "text": message["content"]})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            try:
                arguments = orjson.loads(function.get("arguments") or "{}")
            except orjson.JSONDecodeError:
                arguments = {"_raw": function.get("arguments")}
            content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": arguments})
        return orjson.dumps(
            {
                "id": _message_id(data.get("id")),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": _STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
                "stop_sequence": None,
                "usage": _usage(_canonical_usage(data.get("usage"))),
            }
        )

    def stream(self, *, model: str, client: dict[str, Any] | None = None) -> AnthropicStream:
        return AnthropicStream(model=model)

    def error_body(self, *, status: int, type: str, code: str, message: str, param: str | None) -> bytes:
        kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
