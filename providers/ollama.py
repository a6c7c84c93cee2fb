"""The Ollama adapter: Ollama's native API (``POST /api/chat``, ``POST /api/embed``), not its ``/v1`` layer.

Why native: only the native API lets the gateway set the context window (``num_ctx``; past the default, Ollama
silently drops the start of a long prompt), ``keep_alive`` and ``think``, and it reports exact token counts on
the final object of every answer, streamed or not.

Request (canonical -> Ollama):

==============================================  ================================================================
system / developer message                       ``role: system``
user content (string or text parts)              ``content`` (text parts joined by newlines)
``image_url`` part with a ``data:`` URL          ``images: [<base64>]`` on the same message
assistant ``tool_calls`` (arguments as JSON)     ``tool_calls: [{function: {name, arguments: <object>}}]``
assistant ``reasoning_content``                  ``thinking``
``tool`` message (``tool_call_id``)              ``role: tool``, ``content``, ``tool_name`` (the name of the
                                                 assistant's call with that id)
``tools`` (function)                             ``tools`` (same shape; ``strict`` dropped)
``tool_choice: "none"``                          no ``tools`` sent
``tool_choice`` naming a function                only that function in ``tools``
``max_completion_tokens`` / ``max_tokens``       ``options.num_predict``
temperature, top_p, seed, presence_penalty,      ``options.<same name>``
frequency_penalty
``stop`` (string or list)                        ``options.stop`` (list)
``response_format`` json_object / json_schema    ``format: "json"`` / ``format: <the schema>``
``reasoning_effort``                             ``think``: ``none`` -> false, ``minimal`` -> ``"low"``, else the level
``stream``                                       ``stream`` (always sent: Ollama streams when it is absent)
provider ``options.num_ctx`` / ``keep_alive``    ``options.num_ctx`` / ``keep_alive``
==============================================  ================================================================

Dropped, as Ollama has no equivalent: ``image_url`` with an http(s) URL (Ollama takes inline base64 only and
the gateway does not fetch), other content parts (audio, files), ``tool_choice: "required"`` (Ollama cannot
force a call; a named function is narrowed to, not forced either), ``parallel_tool_calls``, ``n``,
``logprobs``/``top_logprobs``, ``logit_bias``, ``user``, ``service_tier``, ``store``, ``metadata``,
``modalities``, ``audio``, ``prediction``; ``stream_options`` is answered by the gateway itself (the usage
chunk is written only when the client asked for it).

Response (Ollama -> canonical): ``message.content`` -> content; ``message.thinking`` -> ``reasoning_content``;
``message.tool_calls`` -> tool calls with Ollama's id when it sends one, else a synthesized ``call_<hex>``, and
the arguments object serialized to a JSON string; ``done_reason`` ``stop`` -> ``stop`` (``tool_calls`` when the
answer has calls), ``length`` -> ``length``, anything else (``load``, ``unload``) -> ``stop``;
``prompt_eval_count``/``eval_count`` -> prompt/completion tokens (Ollama reports no cache or reasoning counts).
Ollama answers carry no id: one is synthesized (``chatcmpl-<hex>``).

Streams are NDJSON, one object per line, translated line by line as they arrive. Ollama parses a tool call only
once the model has written all of it, so a call arrives whole in one message chunk: it is relayed at once as a
``tool_call_start`` carrying the complete arguments (there are no argument fragments to relay). An
``{"error": ...}`` line mid-stream becomes an error event; a stream that ends before its ``done: true`` object
also does.

Embeddings: ``input`` (a string or list of strings) and ``dimensions`` pass through to ``/api/embed``; the
``base64`` ``encoding_format`` is produced here (Ollama returns floats); ``prompt_eval_count`` is the usage.
Token-array inputs are sent as they are (Ollama rejects them with a 400).

Errors are ``{"error": "<message>"}`` (404 when the model is not pulled).
"""

from __future__ import annotations

import base64
import struct
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .canonical import ChunkWriter, completion_body, embeddings_body, error_json, error_text
from .types import ParsedResponse, UpstreamCall, UpstreamRequest, UpstreamResponse, Usage

__all__ = ["DEFAULT_BASE_URL", "OllamaAdapter", "OllamaStreamTranslator", "chat_body"]

DEFAULT_BASE_URL = "http://127.0.0.1:11434"
_PATHS = {"chat": "/api/chat", "embeddings": "/api/embed"}
_SAMPLING = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
_THINK = {"none": False, "minimal": "low"}
_DATA_URL_MARK = ";base64,"


def _text(content: Any) -> str:
    """The text of canonical message content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "refusal")
        )
    return ""


def _images(content: Any) -> list[str]:
    """Base64 payloads of the ``data:`` image parts; http(s) URLs are dropped (see the module docstring)."""
    if not isinstance(content, list):
        return []
    images = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "image_url":
            continue
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str) and url.startswith("data:") and _DATA_URL_MARK in url:
            images.append(url.partition(_DATA_URL_MARK)[2])
    return images


def _arguments(raw: Any) -> Any:
    """Ollama wants the arguments as an object; canonical messages carry them as a JSON string."""
    if isinstance(raw, dict):
        return raw
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str | bytes) and raw else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}  # tool_call_id -> function name, for the tool messages that answer them
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text(content)})
        elif role == "assistant":
            item: dict[str, Any] = {"role": "assistant", "content": _text(content)}
            if isinstance(message.get("reasoning_content"), str):
                item["thinking"] = message["reasoning_content"]
            calls = []
            for call in message.get("tool_calls") or ():
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict):
                    continue
                name = str(function.get("name") or "")
                if isinstance(call.get("id"), str):
                    tool_names[call["id"]] = name
                calls.append({"function": {"name": name, "arguments": _arguments(function.get("arguments"))}})
            if calls:
                item["tool_calls"] = calls
            out.append(item)
        elif role in ("tool", "function"):
            item = {"role": "tool", "content": _text(content)}
            answered = tool_names.get(str(message.get("tool_call_id"))) or message.get("name")
            if isinstance(answered, str) and answered:
                item["tool_name"] = answered
            out.append(item)
        else:
            item = {"role": "user", "content": _text(content)}
            images = _images(content)
            if images:
                item["images"] = images
            out.append(item)
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in tools if isinstance(tools, list) else ():
        function = (
            tool.get("function") if isinstance(tool, dict) and tool.get("type", "function") == "function" else None
        )
        if isinstance(function, dict):
            out.append({"type": "function", "function": {k: v for k, v in function.items() if k != "strict"}})
    return out


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else "json"
    return None


def chat_body(call: UpstreamCall) -> dict[str, Any]:
    """The ``/api/chat`` request for a canonical chat call (exposed for golden tests)."""
    body = call.body
    out: dict[str, Any] = {
        "model": call.model,
        "messages": _messages(body.get("messages") or []),
        "stream": call.stream,
    }
    tools = _tools(body.get("tools"))
    choice = body.get("tool_choice")
    if tools and choice != "none":
        if isinstance(choice, dict):  # a named function: offer only that one (Ollama cannot force a call)
            name = (choice.get("function") or {}).get("name")
            tools = [tool for tool in tools if tool["function"].get("name") == name] or tools
        out["tools"] = tools
    fmt = _format(body.get("response_format"))
    if fmt is not None:
        out["format"] = fmt
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        out["think"] = _THINK.get(effort, effort)
    options: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool):
        options["num_predict"] = limit
    for name in _SAMPLING:
        if body.get(name) is not None:
            options[name] = body[name]
    stop = body.get("stop")
    if isinstance(stop, str):
        options["stop"] = [stop]
    elif isinstance(stop, list) and stop:
        options["stop"] = stop
    _provider_options(call.provider.options, out, options)
    if options:
        out["options"] = options
    return out


def _provider_options(settings: Mapping[str, str], body: dict[str, Any], options: dict[str, Any]) -> None:
    if settings.get("num_ctx"):
        options["num_ctx"] = int(settings["num_ctx"])
    if settings.get("keep_alive"):
        body["keep_alive"] = settings["keep_alive"]


def _embed_body(call: UpstreamCall) -> dict[str, Any]:
    out: dict[str, Any] = {"model": call.model, "input": call.body.get("input")}
    if isinstance(call.body.get("dimensions"), int):
        out["dimensions"] = call.body["dimensions"]
    if call.provider.options.get("keep_alive"):
        out["keep_alive"] = call.provider.options["keep_alive"]
    return out


def _usage(data: Mapping[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(data.get("prompt_eval_count") or 0), completion_tokens=int(data.get("eval_count") or 0)
    )


def _finish_reason(done_reason: Any, has_tool_calls: bool) -> str:
    if done_reason == "length":
        return "length"
    return "tool_calls" if has_tool_calls else "stop"


def _new_id(prefix: str, size: int) -> str:
    return prefix + uuid.uuid4().hex[:size]


def _tool_call(call: Any) -> tuple[str, str, str]:
    """(id, name, arguments as JSON) of one Ollama tool call."""
    function = call.get("function") if isinstance(call, dict) else None
    function = function if isinstance(function, dict) else {}
    call_id = call.get("id") if isinstance(call, dict) else None
    arguments = function.get("arguments")
    encoded = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
    return (
        call_id if isinstance(call_id, str) and call_id else _new_id("call_", 24),
        str(function.get("name") or ""),
        encoded,
    )


def _base64_body(model: str, vectors: list[list[float]], usage: Usage) -> bytes:
    """``embeddings_body`` with little-endian float32 base64 vectors, as OpenAI answers ``encoding_format=base64``."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode("ascii"),
        }
        for i, v in enumerate(vectors)
    ]
    usage_body = {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage_body})


class OllamaStreamTranslator:
    """Translates an Ollama NDJSON chat stream into canonical SSE chunks, line by line as they arrive."""

    __slots__ = ("_buffer", "_calls", "_ended", "_out", "_started", "usage")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._buffer = b""
        self._out = ChunkWriter(id=_new_id("chatcmpl-", 29), model=model, include_usage=include_usage)
        self._started = False
        self._ended = False  # after the done object or an error: nothing more is relayed
        self._calls = 0
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        *lines, self._buffer = buffer.split(b"\n")
        out: list[bytes] = []
        for line in lines:
            self._line(line, out)
        return out

    def finish(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        out: list[bytes] = []
        self._line(rest, out)
        if not self._ended:
            self._ended = True
            out.append(self._out.error("Ollama ended the stream before its final message."))
        return out

    def _line(self, line: bytes, out: list[bytes]) -> None:
        line = line.strip()
        if not line or self._ended:
            return
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            data = {"error": f"Ollama sent an unreadable stream line: {line[:200].decode('utf-8', 'replace')}"}
        if not isinstance(data, dict) or "error" in data:
            error = data.get("error") if isinstance(data, dict) else None
            self._ended = True
            out.append(self._out.error(str(error or "Ollama sent an unexpected stream line.")))
            return
        if not self._started:
            self._started = True
            out.append(self._out.role())
        message = data.get("message")
        if isinstance(message, dict):
            if message.get("thinking"):
                out.append(self._out.reasoning(str(message["thinking"])))
            if message.get("content"):
                out.append(self._out.content(str(message["content"])))
            for call in message.get("tool_calls") or ():
                call_id, name, arguments = _tool_call(call)
                out.append(self._out.tool_call_start(self._calls, call_id, name, arguments))
                self._calls += 1
        if data.get("done"):
            self._ended = True
            self.usage = _usage(data)
            out.append(self._out.finish(_finish_reason(data.get("done_reason"), self._calls > 0)))
            out.extend(self._out.usage_and_done(self.usage))


class OllamaAdapter:
    """Adapter for Ollama's native API (a local server, or ollama.com with a key)."""

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        body = _embed_body(call) if call.endpoint == "embeddings" else chat_body(call)
        headers = {"content-type": "application/json", **call.extra_headers}
        if call.provider.api_key:
            headers["authorization"] = f"Bearer {call.provider.api_key}"
        base = (call.provider.base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/api")
        return UpstreamRequest(
            method="POST",
            url=base + _PATHS[call.endpoint],
            headers=headers,
            body=orjson.dumps(body),
            stream=call.stream,
            provider_id=call.provider.id,
        )

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse:
        data = orjson.loads(response.body or b"{}")
        if not isinstance(data, dict):
            data = {}
        model = call.model  # Ollama echoes the requested name; streams use it before any answer arrives
        usage = _usage(data)
        if call.endpoint == "embeddings":
            vectors = data.get("embeddings") or []
            if call.body.get("encoding_format") == "base64":
                return ParsedResponse(body=_base64_body(model, vectors, usage), usage=usage, response_model=model)
            return ParsedResponse(
                body=embeddings_body(model=model, vectors=vectors, usage=usage), usage=usage, response_model=model
            )
        message = data.get("message")
        message = message if isinstance(message, dict) else {}
        tool_calls = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in map(_tool_call, message.get("tool_calls") or ())
        ]
        body = completion_body(
            id=_new_id("chatcmpl-", 29),
            model=model,
            content=str(message.get("content") or "") or (None if tool_calls else ""),
            finish_reason=_finish_reason(data.get("done_reason"), bool(tool_calls)),
            usage=usage,
            tool_calls=tool_calls or None,
            reasoning_content=str(message.get("thinking") or "") or None,
        )
        return ParsedResponse(body=body, usage=usage, response_model=model)

    def stream(self, call: UpstreamCall) -> OllamaStreamTranslator:
        return OllamaStreamTranslator(model=call.model, include_usage=call.client_wants_usage)

    def error_message(self, response: UpstreamResponse) -> str:
        body = response.body or b""
        data = error_json(response)
        if data is None:
            return error_text(response)
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, str) and error:
                return error
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return str(error["message"])  # ollama.com's proxy in front of the API answers OpenAI-style
        return body.decode("utf-8", "replace")[:500]
