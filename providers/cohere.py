"""The Cohere adapter: the v2 Chat API (``POST {base}/chat``) and Embed API (``POST {base}/embed``), natively.

Cohere's v2 chat is close to the canonical form (roles, tool calls with JSON-string arguments, image_url parts),
so most of the work is renaming and normalizing enums. What maps, canonical -> Cohere:

    system / developer message     {"role": "system"} (text parts only)
    user content                   string, or parts: text -> text, image_url -> image_url (url + detail)
    assistant content              content; with tool_calls, its text (else its ``reasoning_content``, where
                                   our answers put the plan) becomes ``tool_plan``, Cohere's slot for the words
                                   that accompany tool calls
    assistant tool_calls / tool    tool_calls [{id, type, function: {name, arguments}}] / {"role": "tool",
      message                      tool_call_id, content}
    tools                          tools (name, description, parameters; any ``strict`` -> ``strict_tools``)
    tool_choice                    auto -> omitted; none -> "NONE"; required -> "REQUIRED"; a named function ->
                                   "REQUIRED" with ``tools`` narrowed to that function (Cohere cannot name one)
    max_completion_tokens /        max_tokens (Cohere caps it at the model's limit, so none is sent by default)
      max_tokens
    temperature, seed,             same names, values as given (Cohere takes penalties in 0-1 and answers
      frequency_penalty,           400 outside it, which the client sees)
      presence_penalty
    top_p                          p, clamped to Cohere's 0.01-0.99 (top_p=1, "no nucleus cut", becomes 0.99)
    stop (string or list)          stop_sequences
    response_format                json_object -> json_object; json_schema -> json_object + json_schema;
                                   text -> omitted
    reasoning_effort "none"        thinking {"type": "disabled"} (other values: the model's default)

Dropped, because Cohere has no equivalent: ``parallel_tool_calls`` (the model decides), ``logprobs`` /
``top_logprobs`` (Cohere's shape differs and nothing reads it back), ``user``, ``service_tier``, ``metadata``,
``store``, ``stream_options`` (Cohere always reports usage), message ``name`` fields, non-text/non-image parts
(audio, files), ``reasoning_content`` on assistant messages without tool calls. ``n`` > 1 is refused (one
answer per call).

Cohere -> canonical: ``message.content`` text items are joined into ``content``; ``thinking`` items and the
``tool_plan`` become ``reasoning_content`` (both are the model's chain of thought, not its answer). Finish
reasons: COMPLETE, STOP_SEQUENCE -> stop; MAX_TOKENS, ERROR_LIMIT -> length; TOOL_CALL -> tool_calls;
ERROR_TOXIC (Cohere's only safety-block signal) -> content_filter; ERROR, TIMEOUT, USER_CANCEL and anything
unknown -> stop (the text produced so far is the answer; in a stream, a ``message-end`` that carries
``delta.error`` becomes an error event instead). Usage: ``usage.billed_units`` (what Cohere charges for), falling
back to ``usage.tokens`` when absent (``tokens`` include Cohere's prompt template, which it does not bill, so
costs computed from them would run above the invoice); ``usage.cached_tokens`` is the cache-read count. Cohere
reports neither cache writes nor reasoning tokens. Ids are ``chatcmpl-<Cohere id>``.

Embeddings: ``input`` (string or list of strings) -> ``texts`` with ``input_type`` (the provider option
``embed_input_type``, default ``search_document``) and ``embedding_types: ["float"]``; ``dimensions`` ->
``output_dimension``. Token-array inputs are refused (Cohere embeds text only). Usage is
``meta.billed_units.input_tokens``.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from .canonical import ChunkWriter, completion_body, embeddings_body, error_json, error_text
from .types import ParsedResponse, UpstreamCall, UpstreamRequest, UpstreamResponse, Usage

__all__ = ["CohereAdapter", "CohereStreamTranslator", "chat_body", "embed_body", "finish_reason", "usage_of"]

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "ERROR_LIMIT": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
}
_TOOL_CHOICE = {"none": "NONE", "required": "REQUIRED"}
_SAME_NAME = ("temperature", "seed", "frequency_penalty", "presence_penalty")
_DEFAULT_INPUT_TYPE = "search_document"
_P_MIN, _P_MAX = 0.01, 0.99  # Cohere's documented range for p; OpenAI clients often send top_p=1


def finish_reason(reason: object) -> str:
    """Cohere's finish reason as one of the four canonical ones (see the module docstring)."""
    return _FINISH.get(reason, "stop") if isinstance(reason, str) else "stop"


def _obj(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: provider bodies are read defensively."""
    return value if isinstance(value, dict) else {}


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def usage_of(data: object) -> Usage:
    """A Cohere ``usage`` object: ``billed_units`` (what is invoiced) when present, else ``tokens``;
    ``cached_tokens`` as reads. A billed count of 0 is a count, not an absence."""
    if not isinstance(data, dict):
        return Usage()
    tokens, billed = _obj(data.get("tokens")), _obj(data.get("billed_units"))
    return Usage(
        prompt_tokens=_first(billed.get("input_tokens"), tokens.get("input_tokens")),
        completion_tokens=_first(billed.get("output_tokens"), tokens.get("output_tokens")),
        cached_tokens=_count(data.get("cached_tokens")),
    )


def _first(*values: object) -> int:
    return next((_count(value) for value in values if value is not None), 0)


# ---------------------------------------------------------------- request: canonical -> Cohere


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _text_parts(content: object) -> str | list[dict[str, Any]]:
    """Text content as Cohere takes it: a string stays a string, parts keep only their text parts."""
    if isinstance(content, list):
        return [
            {"type": "text", "text": str(part.get("text") or "")}
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        ]
    return content if isinstance(content, str) else ""


def _user_content(content: object) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return content if isinstance(content, str) else ""
    parts: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            image = {"url": image} if isinstance(image, str) else image
            if isinstance(image, dict) and isinstance(image.get("url"), str):
                kept = {"url": image["url"], **({"detail": image["detail"]} if image.get("detail") else {})}
                parts.append({"type": "image_url", "image_url": kept})
    return parts


def _function_call(call: object) -> dict[str, Any] | None:
    """A tool call in the shape both wires share; arguments always a JSON string. None when malformed."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict):
        return None
    arguments = function.get("arguments")
    return {
        "id": str(call.get("id") or ""),
        "type": "function",
        "function": {
            "name": str(function.get("name") or ""),
            "arguments": arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode(),
        },
    }


def _message(message: dict[str, Any]) -> dict[str, Any] | None:
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": _text_parts(content)}
    if role == "user":
        return {"role": "user", "content": _user_content(content)}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        calls = message.get("tool_calls")
        text = _text(content)
        if calls:
            out["tool_calls"] = [c for c in map(_function_call, calls) if c]
            plan = text or message.get("reasoning_content")  # our answers carry the tool plan there
            if isinstance(plan, str) and plan:
                out["tool_plan"] = plan
        else:
            out["content"] = text
        return out
    if role == "tool":
        return {"role": "tool", "tool_call_id": str(message.get("tool_call_id") or ""), "content": _text_parts(content)}
    return None  # the legacy "function" role has no Cohere equivalent


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        named = _obj(choice.get("function")).get("name")
        tools = [t for t in tools if t["function"].get("name") == named]
        if not tools:
            raise ValueError(f"tool_choice names the function {named!r}, which is not among the tools")
        choice = "required"
    if tools:
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["function"].get("name"),
                    **({"description": t["function"]["description"]} if t["function"].get("description") else {}),
                    "parameters": t["function"].get("parameters") or {"type": "object", "properties": {}},
                },
            }
            for t in tools
        ]
        if any(t["function"].get("strict") for t in tools):
            out["strict_tools"] = True
    if tools and isinstance(choice, str) and choice in _TOOL_CHOICE:
        out["tool_choice"] = _TOOL_CHOICE[choice]


def _response_format(value: object) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if value.get("type") == "json_object":
        return {"type": "json_object"}
    if value.get("type") == "json_schema":
        schema = _obj(value.get("json_schema")).get("schema")
        return {"type": "json_object", **({"json_schema": schema} if isinstance(schema, dict) else {})}
    return None


def chat_body(call: UpstreamCall) -> dict[str, Any]:
    """The Cohere v2 chat request for a canonical chat request (the mapping is in the module docstring)."""
    body = call.body
    if _count(body.get("n")) > 1:
        raise ValueError("Cohere returns one answer per call; n must be 1")
    messages = [m for m in (_message(m) for m in body.get("messages") or () if isinstance(m, dict)) if m]
    out: dict[str, Any] = {"model": call.model, "messages": messages}
    _tools(body, out)
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    if limit is not None:
        out["max_tokens"] = limit
    for name in _SAME_NAME:
        if body.get(name) is not None:
            out[name] = body[name]
    top_p = body.get("top_p")
    if isinstance(top_p, int | float) and not isinstance(top_p, bool):
        out["p"] = min(max(top_p, _P_MIN), _P_MAX)
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = _response_format(body.get("response_format"))
    if response_format is not None:
        out["response_format"] = response_format
    if body.get("reasoning_effort") == "none":
        out["thinking"] = {"type": "disabled"}
    if call.stream:
        out["stream"] = True
    return out


def embed_body(call: UpstreamCall) -> dict[str, Any]:
    """The Cohere v2 embed request for a canonical embeddings request."""
    value = call.body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("Cohere embeds text only: input must be a string or a list of strings")
    out: dict[str, Any] = {
        "model": call.model,
        "texts": texts,
        "input_type": call.provider.options.get("embed_input_type", _DEFAULT_INPUT_TYPE),
        "embedding_types": ["float"],
    }
    if call.body.get("dimensions") is not None:
        out["output_dimension"] = call.body["dimensions"]
    return out


# ---------------------------------------------------------------- response: Cohere -> canonical


def _load(body: bytes | None) -> dict[str, Any]:
    try:
        data = orjson.loads(body or b"")
    except orjson.JSONDecodeError:
        raise ValueError("Cohere answered with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("Cohere answered with a JSON body that is not an object")
    return data


def _chat_response(call: UpstreamCall, data: dict[str, Any]) -> ParsedResponse:
    message = _obj(data.get("message"))
    items = [item for item in message.get("content") or () if isinstance(item, dict)]
    text = "".join(str(item.get("text") or "") for item in items if item.get("type") == "text")
    thoughts = [str(item.get("thinking") or "") for item in items if item.get("type") == "thinking"]
    if message.get("tool_plan"):
        thoughts.append(str(message["tool_plan"]))
    tool_calls = [c for c in map(_function_call, message.get("tool_calls") or ()) if c]
    usage = usage_of(data.get("usage"))
    body = completion_body(
        id=f"chatcmpl-{data.get('id') or uuid.uuid4().hex}",
        model=call.model,
        content=text if text or not tool_calls else None,
        finish_reason=finish_reason(data.get("finish_reason")),
        usage=usage,
        tool_calls=tool_calls or None,
        reasoning_content="\n\n".join(t for t in thoughts if t) or None,
    )
    return ParsedResponse(body=body, usage=usage, response_model=call.model)


def _embed_response(call: UpstreamCall, data: dict[str, Any]) -> ParsedResponse:
    embeddings = data.get("embeddings")
    vectors = embeddings.get("float") if isinstance(embeddings, dict) else embeddings  # v1-style plain list
    meta = _obj(data.get("meta"))
    billed = _obj(meta.get("billed_units"))
    tokens = _obj(meta.get("tokens"))
    usage = Usage(prompt_tokens=_first(billed.get("input_tokens"), tokens.get("input_tokens")))
    body = embeddings_body(model=call.model, vectors=list(vectors or []), usage=usage)
    return ParsedResponse(body=body, usage=usage, response_model=call.model)


class CohereStreamTranslator:
    """Turns Cohere's typed SSE events (``event: <type>`` + ``data: <json>``) into canonical chunks as they come.

    Cohere numbers tool-call events by their content-block position; canonical tool-call indices count calls
    from 0, so each ``tool-call-start`` takes the next index and later deltas are routed by Cohere's index.
    """

    __slots__ = ("_buffer", "_done", "_include_usage", "_model", "_tools", "_writer", "usage")

    def __init__(self, *, model: str, client_wants_usage: bool) -> None:
        self._buffer = b""
        self._model = model
        self._include_usage = client_wants_usage
        self._writer: ChunkWriter | None = None
        self._tools: dict[object, int] = {}
        self._done = False
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = (self._buffer + data if self._buffer else data).replace(b"\r\n", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            out += self._event(event)
        return out

    def finish(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        out = self._event(rest) if rest.strip() else []
        if not self._done:  # a clean end of stream without message-end: the answer is incomplete
            writer, opened = self._open(None)
            out += [*opened, writer.error("Cohere ended the stream before its message-end event")]
            out += writer.usage_and_done(self.usage)
            self._done = True
        return out

    def _open(self, upstream_id: object) -> tuple[ChunkWriter, list[bytes]]:
        if self._writer is not None:
            return self._writer, []
        name = upstream_id if isinstance(upstream_id, str) and upstream_id else uuid.uuid4().hex
        self._writer = ChunkWriter(id=f"chatcmpl-{name}", model=self._model, include_usage=self._include_usage)
        return self._writer, [self._writer.role()]

    def _event(self, raw: bytes) -> list[bytes]:
        name, lines = "", []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                lines.append(line[5:].removeprefix(b" "))
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        payload = b"\n".join(lines)
        if not payload or payload == b"[DONE]" or self._done:
            return []
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(data, dict):
            return []
        return self._typed(str(data.get("type") or name), data)

    def _typed(self, kind: str, data: dict[str, Any]) -> list[bytes]:
        writer, out = self._open(data.get("id"))
        delta = _obj(data.get("delta"))
        message = _obj(delta.get("message"))
        if kind in ("content-start", "content-delta"):
            content = _obj(message.get("content"))
            if content.get("thinking"):
                out.append(writer.reasoning(str(content["thinking"])))
            if content.get("text"):
                out.append(writer.content(str(content["text"])))
        elif kind == "tool-plan-delta" and message.get("tool_plan"):
            out.append(writer.reasoning(str(message["tool_plan"])))
        elif kind in ("tool-call-start", "tool-call-delta"):
            call = _obj(message.get("tool_calls"))
            function = _obj(call.get("function"))
            arguments = str(function.get("arguments") or "")
            if kind == "tool-call-start":
                index = self._tools[data.get("index")] = len(self._tools)
                out.append(writer.tool_call_start(index, str(call.get("id") or ""), str(function.get("name") or "")))
            else:
                index = self._tools.get(data.get("index"), len(self._tools) - 1)
            if arguments and index >= 0:
                out.append(writer.tool_call_arguments(index, arguments))
        elif kind == "message-end":
            self.usage = usage_of(delta.get("usage"))
            error = delta.get("error")
            if isinstance(error, str) and error:
                out.append(writer.error(error))
            else:
                out.append(writer.finish(finish_reason(delta.get("finish_reason"))))
            out += writer.usage_and_done(self.usage)
            self._done = True
        return out


class CohereAdapter:
    """Adapter for Cohere's v2 API (``base_url`` ends in ``/v2``): chat, streamed chat and embeddings."""

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        if call.endpoint == "embeddings":
            body, path = embed_body(call), "/embed"
        else:
            body, path = chat_body(call), "/chat"
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream" if call.stream else "application/json",
            **call.extra_headers,
        }
        if call.provider.api_key:
            headers["authorization"] = f"Bearer {call.provider.api_key}"
        return UpstreamRequest(
            method="POST",
            url=call.provider.base_url + path,
            headers=headers,
            body=orjson.dumps(body),
            stream=call.stream,
            provider_id=call.provider.id,
        )

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse:
        data = _load(response.body)
        return _embed_response(call, data) if call.endpoint == "embeddings" else _chat_response(call, data)

    def stream(self, call: UpstreamCall) -> CohereStreamTranslator:
        return CohereStreamTranslator(model=call.model, client_wants_usage=call.client_wants_usage)

    def error_message(self, response: UpstreamResponse) -> str:
        """Cohere's error body is ``{"id": ..., "message": ...}``; proxies in front of it may answer otherwise."""
        body = response.body or b""
        data = error_json(response)
        if data is None:
            return error_text(response)
        if isinstance(data, dict):
            if isinstance(data.get("message"), str):
                return str(data["message"])
            error = data.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return str(error["message"])
            if isinstance(error, str):
                return error
        return body.decode("utf-8", "replace")[:500] or f"HTTP {response.status}"
