"""The OpenAI Responses dialect (``POST /v1/responses``): the openai SDKs' ``client.responses`` and agents built on it.

Ingest maps a Responses request onto the canonical (OpenAI Chat Completions) request:

    input: a string                                            -> one user message
    message items (user/assistant/system/developer; text,
      input_image by URL, input_file by file_data)             -> messages (developer -> system) and content parts
    function_call items (with the assistant message before)    -> one assistant message's tool_calls (id = call_id)
    function_call_output items                                 -> tool messages
    instructions                                               -> a leading system message
    tools [{type: function, name, description, parameters}]    -> function tools (strict only when given)
    tool_choice auto | none | required | {type: function}      -> tool_choice
    parallel_tool_calls, temperature, top_p, user,
      safety_identifier, prompt_cache_key                      -> the same fields
    max_output_tokens                                          -> max_tokens
    text.format json_schema | json_object, text.verbosity      -> response_format, verbosity
    reasoning.effort                                           -> reasoning_effort

Dropped: ``reasoning`` input items (their encrypted content is only OpenAI's to read), ``reasoning.summary``,
``include``, ``truncation``, ``max_tool_calls``, ``top_logprobs``, ``service_tier``, ``stream_options`` and
``metadata`` (Chat Completions refuses ``metadata`` unless it stores the completion upstream).

Stored answers (``store``, true unless the request says false) and ``previous_response_id``: the gateway keeps
answers itself (``Conversational`` below: ``continues``/``continued``/``transcript``), so a continuation gets
the stored conversation (earlier input and output items; not the earlier ``instructions``) prepended before
ingest. Hosted tools (web_search, file_search, computer_use, code_interpreter, mcp, image_generation, custom,
...) run inside OpenAI's own service: they are dropped and named (``Ingested.dropped``), and forcing one with
``tool_choice`` is refused. Refused, with the field named: what needs state the gateway does not keep
(``conversation``, ``prompt``, ``background``, ``item_reference`` items, ``file_id`` images and files).

The answer goes back as a ``response`` object, or as Responses SSE: ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added`` ... ``response.output_item.done``
(message: ``content_part.added``, ``output_text.delta``/``.done``, ``content_part.done``; function call:
``function_call_arguments.delta``/``.done``; reasoning: ``reasoning_summary_part``/``_text`` events), and
``response.completed`` (``response.incomplete`` when cut by max_output_tokens or a content filter,
``response.failed`` on a mid-stream error), each event with its ``sequence_number``.

The dialect sees the request only at ingest, so request echoes in the answer (``instructions``, ``tools``,
``tool_choice``, ``temperature``, ``metadata``, ...) carry the API's defaults, not the request's values.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from ..types import Endpoint, Usage
from . import DialectError, Ingested
from .openai import type_name

__all__ = ["ResponsesDialect", "ResponsesStream"]

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
_STORED = "Stored responses are not supported by this gateway yet"
# item type -> (its parts field, index name, part event, text event, extra text-event fields)
_TEXT_EVENTS: dict[str, tuple[str, str, str, str, dict[str, Any]]] = {
    "message": ("content", "content_index", "content_part", "output_text", {"logprobs": []}),
    "reasoning": ("summary", "summary_index", "reasoning_summary_part", "reasoning_summary_text", {}),
}
_PASSED = ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key")


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _part(part: Any, at: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": str(part.get("text", ""))}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal", ""))}
    if kind == "input_image":
        if part.get("file_id") and not part.get("image_url"):
            raise DialectError(
                f"{at}.file_id: uploaded files are not available through this gateway; "
                "send the image inline as 'image_url' (an https URL or a data: URL).",
                param=f"{at}.file_id",
            )
        if not isinstance(part.get("image_url"), str):
            raise DialectError(f"{at}.image_url must be a URL string.", param=f"{at}.image_url")
        image = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if not isinstance(part.get("file_data"), str):
            raise DialectError(
                f"{at}: only inline files ('file_data') can be translated, not file_id/file_url.", param=at
            )
        return {"type": "file", "file": {"file_data": part["file_data"], "filename": part.get("filename") or "file"}}
    raise DialectError(
        f"{at} has an unsupported content type {kind!r}; use input_text, output_text, input_image or input_file.",
        param=at,
    )


def _parts(content: Any, at: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise DialectError(f"{at} must be a string or an array of content parts, got {type_name(content)}.", param=at)
    return [_part(part, f"{at}[{j}]") for j, part in enumerate(content)]


def _text(content: Any, at: str) -> str:
    """Content that the canonical form takes as plain text only (system and assistant turns, tool output)."""
    if isinstance(content, str):
        return content
    parts = _parts(content, at)
    for j, part in enumerate(parts):
        if part["type"] != "text":
            raise DialectError(f"{at}[{j}] must be text here, not {part['type']}.", param=f"{at}[{j}]")
    return "".join(part["text"] for part in parts)


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise DialectError(
            f"{where}.role must be user, assistant, system or developer, got {item.get('role')!r}.",
            param=f"{where}.role",
        )
    content = item.get("content")
    if role == "user":
        return {"role": "user", "content": content if isinstance(content, str) else _parts(content, f"{where}.content")}
    return {"role": role, "content": _text(content, f"{where}.content")}


def _function_call(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise DialectError(f"{where} must have a string 'call_id' and 'name'.", param=where)
    arguments = item.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments or {}).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _input(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        shown = "an empty array" if isinstance(raw, list) else type_name(raw)
        raise DialectError(f"'input' is required: a string or a non-empty array of items, got {shown}.", param="input")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise DialectError(f"{where} must be an object, got {type_name(item)}.", param=where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            out.append(_message(item, where))
        elif kind == "function_call":
            call = _function_call(item, where)
            if out and out[-1]["role"] == "assistant":  # one assistant turn: its text, then its calls
                out[-1].setdefault("tool_calls", []).append(call)
                out[-1]["content"] = out[-1]["content"] or None
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise DialectError(f"{where} must have a string 'call_id'.", param=f"{where}.call_id")
            output = _text(item.get("output", ""), f"{where}.output")
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": output})
        elif kind == "reasoning":
            continue
        elif kind == "item_reference":
            raise DialectError(
                f"{where}: {_STORED}, so items cannot be referenced by id; send them in full.", param=where
            )
        else:
            raise DialectError(
                f"{where} has type {kind!r}; only message, function_call, function_call_output and reasoning items "
                "are translated.",
                param=where,
            )
    return out


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str):
        raise DialectError(f"{where} must have a string 'name'.", param=f"{where}.name")
    function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object"}}
    if tool.get("description"):
        function["description"] = tool["description"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tools(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Function tools, with ``namespace`` groups flattened; hosted tools are dropped and named.

    Hosted tools (web_search, file_search, code_interpreter, computer_use, mcp, image_generation, custom, ...)
    run inside OpenAI's own service, so no other upstream can honour them. Clients such as Codex declare some
    by default, so a request is not refused for them: they are dropped and listed in the
    ``alephant-dropped-tools`` response header. Forcing one with ``tool_choice`` is still an error.
    """
    if not isinstance(raw, list):
        raise DialectError(f"'tools' must be an array, got {type_name(raw)}.", param="tools")
    tools: list[dict[str, Any]] = []
    dropped: list[str] = []
    for i, tool in enumerate(raw):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            tools.append(_function(tool, f"tools[{i}]"))
        elif kind == "namespace" and isinstance(tool.get("tools"), list):
            # A group of function tools (Codex's sub-agent tools): flattened; calls come back by inner name.
            for j, inner in enumerate(tool["tools"]):
                if isinstance(inner, dict) and inner.get("type") == "function":
                    tools.append(_function(inner, f"tools[{i}].tools[{j}]"))
                else:
                    dropped.append(str(inner.get("type") if isinstance(inner, dict) else inner))
        elif isinstance(kind, str):
            dropped.append(str(tool.get("name") or kind))
        else:
            raise DialectError(f"tools[{i}] must be an object with a 'type'.", param=f"tools[{i}]")
    return tools, dropped


def _tool_choice(raw: Any) -> Any:
    if raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, dict) and raw.get("type") == "function" and isinstance(raw.get("name"), str):
        return {"type": "function", "function": {"name": raw["name"]}}
    shown = raw.get("type") if isinstance(raw, dict) else raw
    raise DialectError(
        f"'tool_choice' {shown!r} cannot be translated: use auto, none, required or "
        '{"type": "function", "name": ...} (only function tools are translated).',
        param="tool_choice",
    )


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict):
        raise DialectError(f"'text' must be an object, got {type_name(text)}.", param="text")
    fmt = text.get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema" and isinstance(fmt, dict):
        spec = {k: fmt[k] for k in ("name", "schema", "description", "strict") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": spec}
    raise DialectError("'text.format.type' must be text, json_object or json_schema.", param="text.format")


def _input_items(raw: Any) -> list[Any]:
    """Input as a list of items (a string input is one user message)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return list(raw) if isinstance(raw, list) else []


def _refuse_stored(data: dict[str, Any]) -> None:
    for field, what in (
        ("conversation", "conversations cannot be continued"),
        ("prompt", "stored prompt templates cannot be used"),
    ):
        if data.get(field):
            raise DialectError(f"'{field}': {_STORED}, so {what}. Send the full conversation in 'input'.", param=field)
    if data.get("background"):
        raise DialectError(f"'background': {_STORED}, so background responses cannot run.", param="background")


def ingest_responses(data: dict[str, Any]) -> Ingested:
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise DialectError("'model' is required: a model name such as 'mock/mock-1'.", param="model")
    _refuse_stored(data)
    messages = _input(data.get("input"))
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise DialectError("'instructions' must be a string.", param="instructions")
        messages.insert(0, {"role": "system", "content": instructions})
    body: dict[str, Any] = {"model": model, "messages": messages}
    for field in _PASSED:
        if data.get(field) is not None:
            body[field] = data[field]
    limit = data.get("max_output_tokens")
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise DialectError("'max_output_tokens' must be a positive integer.", param="max_output_tokens")
        body["max_tokens"] = limit
    choice = None if data.get("tool_choice") is None else _tool_choice(data["tool_choice"])
    dropped: list[str] = []
    if data.get("tools"):  # tool_choice and parallel_tool_calls without tools are an error upstream
        body["tools"], dropped = _tools(data["tools"])
        if not body["tools"]:
            del body["tools"]
        elif choice is not None:
            body["tool_choice"] = choice
        if isinstance(data.get("parallel_tool_calls"), bool):
            body["parallel_tool_calls"] = data["parallel_tool_calls"]
    if data.get("text") is not None:
        response_format = _response_format(data["text"])
        if response_format:
            body["response_format"] = response_format
        if data["text"].get("verbosity"):
            body["verbosity"] = data["text"]["verbosity"]
    reasoning = data.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        body["reasoning_effort"] = reasoning["effort"]
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise DialectError(f"'stream' must be a boolean, got {type_name(stream)}.", param="stream")
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return Ingested(
        body=body,
        model=model,
        stream=bool(stream),
        client_wants_usage=True,
        translated=True,
        client_body=data,
        dropped=tuple(dropped),
    )


def _canonical_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    prompt = data.get("prompt_tokens_details")
    completion = data.get("completion_tokens_details")
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(prompt.get("cached_tokens") or 0) if isinstance(prompt, dict) else 0,
        cache_write_tokens=int(prompt.get("cache_write_tokens") or 0) if isinstance(prompt, dict) else 0,
        reasoning_tokens=int(completion.get("reasoning_tokens") or 0) if isinstance(completion, dict) else 0,
    )


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


# The request's settings as a response echoes them: the API's defaults, since the answer is built without the request.
_ECHOES: dict[str, Any] = {
    "background": False,
    "instructions": None,
    "max_output_tokens": None,
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": False,
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "truncation": "disabled",
    "user": None,
    "metadata": {},
}


def _response(
    *,
    id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
    incomplete: str | None = None,
    error: dict[str, Any] | None = None,
    echo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object, to serialize at once (it shares ``_ECHOES``' values)."""
    return {
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model,
        "output": output,
        "usage": _usage(usage) if usage is not None else None,
        **_ECHOES,
        **(echo or {}),
    }


_ECHOED = (
    "instructions",
    "max_output_tokens",
    "parallel_tool_calls",
    "previous_response_id",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "metadata",
)


def echo_of(client: dict[str, Any] | None) -> dict[str, Any]:
    """The request settings a response echoes back, as the client sent them (defaults where it did not)."""
    if not client:
        return {}
    echo = {field: client[field] for field in _ECHOED if client.get(field) is not None}
    echo["store"] = client.get("store") is not False
    tools = [t for t in client.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    if tools:
        echo["tools"] = tools
    if isinstance(client.get("tool_choice"), str | dict):
        echo["tool_choice"] = client["tool_choice"]
    if isinstance(client.get("reasoning"), dict):
        echo["reasoning"] = {"effort": None, "summary": None, **client["reasoning"]}
    if isinstance(client.get("text"), dict) and isinstance(client["text"].get("format"), dict):
        echo["text"] = {"format": client["text"]["format"]}
    return echo


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": _new_id("msg_"), "type": "message", "status": status, "role": "assistant", "content": content}


def _reasoning_item(status: str, text: str | None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text is not None else []
    return {"id": _new_id("rs_"), "type": "reasoning", "status": status, "summary": summary}


def _call_item(status: str, call_id: Any, name: Any, arguments: str) -> dict[str, Any]:
    return {
        "id": _new_id("fc_"),
        "type": "function_call",
        "status": status,
        "call_id": str(call_id or _new_id("call_")),
        "name": str(name or ""),
        "arguments": arguments,
    }


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ResponsesStream:
    """Canonical chat.completion.chunk events in, Responses SSE events out, one event at a time.

    Output items open as their first delta arrives and close when the next item opens (as OpenAI streams them:
    one item at a time), the rest at the end. Every emitted item is also kept, so ``response.completed`` carries
    the whole output.
    """

    def __init__(self, *, model: str, echo: dict[str, Any] | None = None) -> None:
        self.usage = Usage()
        self.final: dict[str, Any] | None = None  # the finished response object, for storing
        self._echo = echo or {}
        self._model = model
        self._id = _new_id("resp_")
        self._created_at = int(time.time())
        self._buffer = b""
        self._sequence = 0
        self._started = False
        self._done = False
        self._output: list[dict[str, Any]] = []
        self._open: int | None = None  # output_index of the item still receiving deltas
        self._calls: dict[int, int] = {}  # canonical tool_call index -> output_index
        self._finish_reason = "stop"

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer = (self._buffer + data).replace(b"\r\n", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            out.extend(self._event_in(event))
        return out

    def finish(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        return [*self._event_in(rest), *self._finish()]

    def _event_in(self, event: bytes) -> list[bytes]:
        payload = event.partition(b"data:")[2].strip()
        if payload == b"[DONE]":
            return self._finish()
        if not payload or self._done:
            return []
        return self._chunk(orjson.loads(payload))

    def _emit(self, kind: str, **fields: Any) -> bytes:
        self._sequence += 1
        return _sse(kind, {"type": kind, "sequence_number": self._sequence - 1, **fields})

    def _snapshot(self, status: str, **fields: Any) -> dict[str, Any]:
        usage = self.usage if status != "in_progress" else None
        return _response(
            id=self._id,
            created_at=self._created_at,
            model=self._model,
            status=status,
            usage=usage,
            echo=self._echo,
            **fields,
        )

    def _start(self) -> list[bytes]:
        self._started = True
        return [
            self._emit("response.created", response=self._snapshot("in_progress", output=[])),
            self._emit("response.in_progress", response=self._snapshot("in_progress", output=[])),
        ]

    def _add(self, item: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open = len(self._output)
        self._output.append(item)
        out.append(self._emit("response.output_item.added", output_index=self._open, item=item))
        return out

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        item = self._output[index]
        at: dict[str, Any] = {"item_id": item["id"], "output_index": index}
        out = []
        if item["type"] in _TEXT_EVENTS:
            field, position, part_event, text_event, extra = _TEXT_EVENTS[item["type"]]
            part = item[field][0]
            out.append(self._emit(f"response.{text_event}.done", **at, **{position: 0}, text=part["text"], **extra))
            out.append(self._emit(f"response.{part_event}.done", **at, **{position: 0}, part=part))
        else:
            out.append(self._emit("response.function_call_arguments.done", **at, arguments=item["arguments"]))
        item["status"] = "incomplete" if self._finish_reason in _INCOMPLETE else "completed"
        out.append(self._emit("response.output_item.done", output_index=index, item=item))
        return out

    def _text_delta(self, kind: str, delta: str) -> list[bytes]:
        """Text for the open message (output_text) or reasoning item (summary_text), opening one if needed."""
        field, position, part_event, text_event, extra = _TEXT_EVENTS[kind]
        out = []
        if self._open is None or self._output[self._open]["type"] != kind:
            if kind == "message":
                item, part = _message_item("in_progress", []), _text_part("")
            else:
                item, part = _reasoning_item("in_progress", None), {"type": "summary_text", "text": ""}
            out.extend(self._add(item))
            item[field].append(part)
            at = {"item_id": item["id"], "output_index": self._open, position: 0}
            out.append(self._emit(f"response.{part_event}.added", **at, part=part))
        item = self._output[-1]
        item[field][0]["text"] += delta
        at = {"item_id": item["id"], "output_index": len(self._output) - 1, position: 0}
        out.append(self._emit(f"response.{text_event}.delta", **at, delta=delta, **extra))
        return out

    def _tool_call(self, call: dict[str, Any]) -> list[bytes]:
        out = []
        position = int(call.get("index", 0))
        function = call.get("function") or {}
        if position not in self._calls:
            out.extend(self._add(_call_item("in_progress", call.get("id"), function.get("name"), "")))
            self._calls[position] = len(self._output) - 1
        index = self._calls[position]
        item = self._output[index]
        fragment = function.get("arguments")
        if fragment:
            item["arguments"] += fragment
            if index == self._open:  # a fragment for a call closed already (not OpenAI's order): final output only
                at = {"item_id": item["id"], "output_index": index}
                out.append(self._emit("response.function_call_arguments.delta", **at, delta=fragment))
        return out

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = [] if self._started else self._start()
        if "error" in chunk and not chunk.get("choices"):
            out.append(self._fail(chunk["error"]))
            return out
        if chunk.get("usage"):
            self.usage = _canonical_usage(chunk["usage"])
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                out.extend(self._text_delta("reasoning", delta["reasoning_content"]))
            if delta.get("content"):
                out.extend(self._text_delta("message", delta["content"]))
            for call in delta.get("tool_calls") or ():
                out.extend(self._tool_call(call))
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return out

    def _fail(self, error: Any) -> bytes:
        self._done = True
        message = error.get("message") if isinstance(error, dict) else str(error)
        code = error.get("code") if isinstance(error, dict) else None
        if self._open is not None:
            self._output[self._open]["status"] = "incomplete"
        failure = {"code": code if code == "rate_limit_exceeded" else "server_error", "message": str(message)}
        return self._emit("response.failed", response=self._snapshot("failed", output=self._output, error=failure))

    def _finish(self) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        out = [] if self._started else self._start()
        out.extend(self._close())
        incomplete = _INCOMPLETE.get(self._finish_reason)
        status = "incomplete" if incomplete else "completed"
        response = self._snapshot(status, output=self._output, incomplete=incomplete)
        self.final = response
        out.append(self._emit(f"response.{status}", response=response))
        return out


class ResponsesDialect:
    name = "responses"
    media_type = "application/json"

    def ingest(self, endpoint: Endpoint, data: dict[str, Any]) -> Ingested:
        return ingest_responses(data)

    def response(self, canonical: bytes, *, model: str, client: dict[str, Any] | None = None) -> bytes:
        data = orjson.loads(canonical)
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        incomplete = _INCOMPLETE.get(choice.get("finish_reason") or "stop")
        status = "incomplete" if incomplete else "completed"
        output: list[dict[str, Any]] = []
        if message.get("reasoning_content"):
            output.append(_reasoning_item("completed", message["reasoning_content"]))
        content = []
        if message.get("content") or not (message.get("tool_calls") or message.get("refusal")):
            content.append(_text_part(message.get("content") or ""))
        if message.get("refusal"):
            content.append({"type": "refusal", "refusal": message["refusal"]})
        if content:
            output.append(_message_item(status, content))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            output.append(
                _call_item("completed", call.get("id"), function.get("name"), function.get("arguments") or "")
            )
        created = data.get("created")
        body = _response(
            id=_new_id("resp_"),
            created_at=created if isinstance(created, int) else int(time.time()),
            model=model,
            status=status,
            output=output,
            usage=_canonical_usage(data.get("usage")),
            incomplete=incomplete,
            echo=echo_of(client),
        )
        return orjson.dumps(body)

    def stream(self, *, model: str, client: dict[str, Any] | None = None) -> ResponsesStream:
        return ResponsesStream(model=model, echo=echo_of(client))

    # --- stored responses (Conversational) ----------------------------------------------------------------

    def continues(self, data: dict[str, Any]) -> str | None:
        previous = data.get("previous_response_id")
        return previous if isinstance(previous, str) and previous else None

    def continued(self, data: dict[str, Any], items: list[Any]) -> dict[str, Any]:
        """The body with the stored conversation before this input (instructions are not carried over)."""
        return {**data, "input": [*items, *_input_items(data.get("input"))]}

    def transcript(self, data: dict[str, Any], answer: dict[str, Any]) -> tuple[str, list[Any]] | None:
        if data.get("store") is False or not isinstance(answer.get("id"), str):
            return None
        output = [item for item in answer.get("output") or () if item.get("type") in ("message", "function_call")]
        return answer["id"], [*_input_items(data.get("input")), *output]

    def error_body(self, *, status: int, type: str, code: str, message: str, param: str | None) -> bytes:
        return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})
