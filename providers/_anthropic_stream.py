"""Anthropic Messages wire -> canonical: usage, stop reasons and the SSE stream translator.

Kept apart from ``providers.anthropic`` (the request side) so each module stays one concept; both use
``read_usage`` and ``finish_reason`` from here.

An Anthropic stream is a sequence of named SSE events (``event: <type>`` + ``data: <json>``)::

    message_start                    -> role chunk (id, model, input usage)
    content_block_start  text        -> content chunk if it carries text
                         tool_use    -> tool_call_start (index counts tool blocks only, from 0)
                         thinking    -> reasoning chunk if it carries text
    content_block_delta  text_delta        -> content chunk
                         input_json_delta  -> tool_call_arguments fragment, as it arrives
                         thinking_delta    -> reasoning chunk
                         signature_delta, citations_delta -> nothing (no canonical field)
    message_delta                    -> remembers stop_reason, updates usage (cumulative counts)
    message_stop                     -> finish chunk, then usage chunk (if asked) and [DONE]
    ping, content_block_stop         -> nothing
    error                            -> canonical error event; the stream ends there
"""

from __future__ import annotations

from typing import Any

import orjson

from .canonical import ChunkWriter
from .types import Usage

__all__ = ["AnthropicStreamTranslator", "AnthropicUsageTap", "finish_reason", "read_usage"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object) -> str:
    """The canonical finish reason; unknown or missing reasons read as ``stop`` (the turn did end)."""
    return _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def read_usage(data: object, base: Usage | None = None) -> Usage:
    """Anthropic usage -> canonical. Anthropic's ``input_tokens`` excludes cache reads and writes; OpenAI's
    ``prompt_tokens`` includes them, so the three are summed. Counts missing from ``data`` keep ``base``'s
    (a stream's ``message_delta`` may carry only ``output_tokens``)."""
    base = base or Usage()
    if not isinstance(data, dict):
        return base

    def count(key: str, default: int) -> int:
        value = _count(data, key)
        return default if value is None else value

    read = count("cache_read_input_tokens", base.cached_tokens)
    written = count("cache_creation_input_tokens", base.cache_write_tokens)
    fresh = count("input_tokens", base.prompt_tokens - base.cached_tokens - base.cache_write_tokens)
    details = data.get("output_tokens_details")
    thinking = _count(details, "thinking_tokens") if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=fresh + read + written,
        completion_tokens=count("output_tokens", base.completion_tokens),
        cached_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=base.reasoning_tokens if thinking is None else thinking,
    )


def _error_text(data: object) -> tuple[str, str]:
    """(message, type) of an Anthropic error object ``{"type": "error", "error": {"type", "message"}}``."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "Anthropic stream error"), str(error.get("type") or "upstream_error")
    return "Anthropic stream error", "upstream_error"


class AnthropicStreamTranslator:
    """Translates one Anthropic SSE stream into canonical chunks, event by event (nothing waits for the end).

    Bytes arrive in arbitrary splits: complete events (blank-line terminated) are handled at once and the
    tail is kept for the next ``feed``.
    """

    __slots__ = ("_block_kinds", "_buffer", "_done", "_include_usage", "_model", "_stop", "_tools", "_writer", "usage")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._buffer = b""
        self._model = model
        self._include_usage = include_usage
        self._writer: ChunkWriter | None = None
        self._block_kinds: dict[int, str] = {}
        self._tools: dict[int, int] = {}  # content block index -> canonical tool call index
        self._stop: object = None
        self._done = False
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:  # a "\r\n" split across two reads
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            if not self._done:
                self._event(event, out)
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        rest, self._buffer = self._buffer, b""
        if rest.strip() and not self._done:
            self._event(rest, out)
        if not self._done:
            self._done = True
            writer = self._start(out)
            if self._stop is not None:  # message_delta arrived, message_stop did not: the answer is whole
                out.append(writer.finish(finish_reason(self._stop)))
                out.extend(writer.usage_and_done(self.usage))
            else:
                out.append(writer.error("The Anthropic stream ended before the message was complete."))
        return out

    def _start(self, out: list[bytes], message: dict[str, Any] | None = None) -> ChunkWriter:
        """The writer, created (with the role chunk) on ``message_start`` or the first event that needs it."""
        if self._writer is None:
            message = message or {}
            message_id = message.get("id")
            model = message.get("model")
            self._writer = ChunkWriter(
                id=f"chatcmpl-{message_id}" if isinstance(message_id, str) else "chatcmpl-anthropic",
                model=model if isinstance(model, str) and model else self._model,
                include_usage=self._include_usage,
            )
            out.append(self._writer.role())
        return self._writer

    def _event(self, event: bytes, out: list[bytes]) -> None:
        payload = b"".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if not payload:
            return
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if kind == "content_block_delta":
            self._delta(data, out)
        elif kind == "content_block_start":
            self._block_start(data, out)
        elif kind == "message_start":
            message = data.get("message")
            message = message if isinstance(message, dict) else {}
            self.usage = read_usage(message.get("usage"))
            self._start(out, message)
        elif kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self._stop = delta["stop_reason"]
            self.usage = read_usage(data.get("usage"), self.usage)
        elif kind == "message_stop":
            writer = self._start(out)
            out.append(writer.finish(finish_reason(self._stop)))
            out.extend(writer.usage_and_done(self.usage))
            self._done = True
        elif kind == "error":
            message, code = _error_text(data)
            out.append(self._start(out).error(message, code))
            self._done = True

    def _block_start(self, data: dict[str, Any], out: list[bytes]) -> None:
        index = data.get("index")
        block = data.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return
        kind = str(block.get("type"))
        self._block_kinds[index] = kind
        writer = self._start(out)
        if kind == "text" and block.get("text"):
            out.append(writer.content(str(block["text"])))
        elif kind == "thinking" and block.get("thinking"):
            out.append(writer.reasoning(str(block["thinking"])))
        elif kind == "tool_use":
            tool_index = self._tools[index] = len(self._tools)
            initial = block.get("input")
            arguments = orjson.dumps(initial).decode() if isinstance(initial, dict) and initial else ""
            out.append(
                writer.tool_call_start(tool_index, str(block.get("id", "")), str(block.get("name", "")), arguments)
            )

    def _delta(self, data: dict[str, Any], out: list[bytes]) -> None:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        writer = self._start(out)
        if kind == "text_delta":
            if delta.get("text"):
                out.append(writer.content(str(delta["text"])))
        elif kind == "input_json_delta":
            tool_index = self._tools.get(data.get("index"))  # type: ignore[arg-type]
            fragment = delta.get("partial_json")
            if tool_index is not None and isinstance(fragment, str) and fragment:
                out.append(writer.tool_call_arguments(tool_index, fragment))
        elif kind == "thinking_delta" and delta.get("thinking"):
            out.append(writer.reasoning(str(delta["thinking"])))


class AnthropicUsageTap:
    """Relays an Anthropic SSE stream byte for byte (same-dialect passthrough), reading usage on the way.

    Only ``message_start`` and ``message_delta`` events carry usage; other events are not parsed.
    """

    __slots__ = ("_buffer", "usage")

    def __init__(self) -> None:
        self._buffer = b""
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = (self._buffer + data).replace(b"\r\n", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        for event in events:
            if b"message_start" in event or b"message_delta" in event:
                payload = event.partition(b"data:")[2].strip()
                try:
                    parsed = orjson.loads(payload)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(parsed, dict):
                    usage = parsed.get("usage") or (parsed.get("message") or {}).get("usage")
                    self.usage = read_usage(usage, self.usage)
        return [data]

    def finish(self) -> list[bytes]:
        return []
