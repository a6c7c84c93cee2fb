"""The Google Gemini adapter: the Generative Language API (``v1beta``) spoken from canonical Chat Completions.

Wire: ``POST {base}/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` for streams and
``:batchEmbedContents`` for embeddings; the key goes in the ``x-goog-api-key`` header, never in the URL (URLs
end up in error messages and logs).

What maps (canonical -> Gemini):

========================================  ===========================================================
system / developer messages               ``systemInstruction`` (all of them, in order, wherever they sit)
user / assistant                          ``contents`` with roles ``user`` / ``model``
text parts, ``image_url`` data: URL       ``text``, ``inlineData {mimeType, data}``
``image_url`` http(s) URL                 ``fileData {fileUri, mimeType}`` (type guessed from the name)
``input_audio``, ``file`` (data: URL)     ``inlineData``
assistant ``tool_calls``                  ``functionCall {name, args}`` parts (+ ``thoughtSignature``)
``tool`` messages                         ``functionResponse {name, response}`` parts, consecutive ones in
                                          one ``user`` turn; the name is looked up from the call id;
                                          a non-object result is wrapped as ``{"result": ...}``
``max_completion_tokens``/``max_tokens``  ``generationConfig.maxOutputTokens``
temperature, top_p, stop, seed,           ``temperature``, ``topP``, ``stopSequences``, ``seed``,
presence/frequency_penalty                ``presencePenalty``, ``frequencyPenalty``
``response_format`` json_object           ``responseMimeType: application/json``
``response_format`` json_schema           ... plus ``responseSchema`` (converted, see below)
``reasoning_effort``                      ``thinkingConfig``: ``thinkingLevel`` (Gemini 3+; none and
                                          minimal -> low) or ``thinkingBudget`` (2.x), with
                                          ``includeThoughts`` (unless none/minimal) so the thought
                                          summaries come back as ``reasoning_content``
``tools`` (function)                      ``tools: [{functionDeclarations: [...]}]``
``tool_choice`` auto/none/required/named  ``toolConfig.functionCallingConfig`` AUTO/NONE/ANY/ANY +
                                          ``allowedFunctionNames``
``input`` (embeddings), ``dimensions``    ``requests[].content.parts[].text``, ``outputDimensionality``
========================================  ===========================================================

Dropped, because Gemini has no equivalent: ``n`` (one candidate; ``candidateCount`` is left unset since
recent models reject it), ``logit_bias``, ``logprobs``/``top_logprobs``, ``user``, ``parallel_tool_calls``
(Gemini decides), ``service_tier``, ``store``, ``metadata``, message ``name``, non-function tools. Token-array
embedding inputs are sent as their decimal text (Gemini embeds text only).

JSON Schema -> Gemini ``Schema`` (an OpenAPI subset; unknown keys are a 400): ``$ref`` is inlined from
``$defs``/``definitions``; ``["x", "null"]`` types and ``{"type": "null"}`` branches become
``nullable``; ``oneOf`` becomes ``anyOf``; ``allOf`` is merged; ``const`` becomes a one-value ``enum``;
non-string enums, unsupported ``format`` values, ``additionalProperties``, ``$schema``, ``examples``,
``exclusiveMinimum`` and every other key outside the subset are dropped; empty ``properties`` are omitted
(Gemini rejects an OBJECT with empty properties) and a function without parameters sends none.

Answers (Gemini -> canonical): text parts joined; ``thought: true`` parts -> ``reasoning_content``;
``functionCall`` -> ``tool_calls``. Finish: STOP -> stop (tool_calls when the answer calls functions);
MAX_TOKENS and CONTINUATION (the per-request output cap; the gateway does not follow continuation
tokens) -> length; SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_* filters, LANGUAGE,
MODEL_ARMOR, ESCALATION, PUP_LIMITED_DISABLED -> content_filter; a prompt blocked before generation
(``promptFeedback.blockReason``, no candidates) -> content_filter with empty content; anything else -> stop.
Usage: prompt = ``promptTokenCount`` + ``toolUsePromptTokenCount``; cached = ``cachedContentTokenCount``
(a subset of the prompt); completion = ``candidatesTokenCount`` + ``thoughtsTokenCount``; reasoning =
``thoughtsTokenCount``. ``batchEmbedContents`` reports no usage: when ``usageMetadata`` is absent the prompt
is estimated at one token per four characters (Gemini's own rule of thumb). ``encoding_format: base64`` is
honoured by packing the returned floats as little-endian float32, as OpenAI does.

Tool call ids: Gemini function calls carry no id (or an optional one, used when present), so ids are
synthesized as ``call_<index>_<hash>`` -- stable for one answer, so a stream and a non-stream read agree.
Gemini 3+ returns an opaque ``thoughtSignature`` on (the first of) a turn's function calls and answers 400
when it is not sent back; the canonical form has nowhere to keep it, so it rides in the tool call id after
``__ts_`` and is restored when the client echoes the id. When a Gemini 3+ history lacks one (a client that
rewrote ids, a conversation started elsewhere) the documented ``skip_thought_signature_validator`` stands in.

Streams: each SSE event is a whole ``GenerateContentResponse``. Gemini does not stream function-call
arguments (it sends each call whole, in one event), so a call is relayed at once as one ``tool_call_start``
carrying its full arguments. An ``error`` object inside the stream becomes the canonical error event.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import mimetypes
import struct
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson

from .canonical import ChunkWriter, completion_body, embeddings_body, error_json, error_text
from .types import ParsedResponse, UpstreamCall, UpstreamRequest, UpstreamResponse, Usage

__all__ = ["GeminiAdapter", "GeminiStreamTranslator", "schema_for_gemini", "usage_from"]

_KEY_HEADER = "x-goog-api-key"
_SIGNATURE_MARK = "__ts_"
_SKIP_SIGNATURE = "skip_thought_signature_validator"
_LENGTH = frozenset({"MAX_TOKENS", "CONTINUATION"})
# Gemini finish reasons that mean the answer was withheld or cut by a filter.
_FILTERED = frozenset(
    [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "LANGUAGE",
        "MODEL_ARMOR",
        "ESCALATION",
        "PUP_LIMITED_DISABLED",
    ]
)
# Schema keys passed through unchanged; type, format, enum, nullable, anyOf, properties, required and items are
# rewritten by schema_for_gemini.
_SCHEMA_KEYS = frozenset(
    [
        "title",
        "description",
        "default",
        "example",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "propertyOrdering",
    ]
)
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}
_MAX_SCHEMA_DEPTH = 32  # recursive $refs are cut here rather than looping
# reasoning_effort -> Gemini 3+ thinkingLevel, and -> Gemini 2.x thinkingBudget (tokens)
_LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
_BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}


# ---------------------------------------------------------------------------------------------- requests


def _is_legacy(model: str) -> bool:
    """Gemini 1.x/2.x (and Gemma): thinking budgets instead of levels, no mandatory thought signatures."""
    name = model.rpartition("/")[2]
    return name.startswith(("gemini-1", "gemini-2", "gemma"))


def _model_path(model: str) -> str:
    path = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
    return quote(path, safe="/-._~")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _data_url(url: str) -> dict[str, Any] | None:
    head, sep, data = url.partition(",")
    if not (sep and head.startswith("data:") and head.endswith(";base64")):
        return None
    return {"inlineData": {"mimeType": head[5:-7] or "application/octet-stream", "data": data}}


def _part(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    kind = item.get("type")
    if kind == "text":
        return {"text": str(item.get("text", ""))}
    if kind == "image_url":
        image = item.get("image_url")
        url = str(image.get("url", "") if isinstance(image, dict) else image or "")
        inline = _data_url(url)
        if inline is not None:
            return inline
        guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
        return {"fileData": {"fileUri": url, **({"mimeType": guessed} if guessed else {})}}
    if kind == "input_audio" and isinstance(item.get("input_audio"), dict):
        audio = item["input_audio"]
        return {"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio.get("data", "")}}
    if kind == "file" and isinstance(item.get("file"), dict):
        return _data_url(str(item["file"].get("file_data", "")))
    return None


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [part for part in map(_part, content) if part is not None]
    if content is None:
        return []
    return [{"text": content if isinstance(content, str) else str(content)}]


def _split_id(call_id: str) -> tuple[str, str | None]:
    base, mark, signature = call_id.partition(_SIGNATURE_MARK)
    return base, (signature or None) if mark else None


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw) if isinstance(raw, str | bytes) and raw else {}
    except orjson.JSONDecodeError:
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def _tool_result(content: Any) -> dict[str, Any]:
    if isinstance(content, dict):
        return content
    text = _text_of(content)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def _contents(messages: list[Any], model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(contents, systemInstruction parts). Consecutive tool results share one ``user`` turn, as Gemini wants."""
    contents: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    need_signature = not _is_legacy(model)
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_parts(content))
        elif role == "assistant":
            parts = [p for p in _parts(content) if p.get("text") != ""]
            calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
            for index, call in enumerate(calls):
                function = call.get("function") or {}
                name = str(function.get("name", ""))
                names[str(call.get("id", ""))] = name
                part: dict[str, Any] = {"functionCall": {"name": name, "args": _arguments(function.get("arguments"))}}
                signature = _split_id(str(call.get("id", "")))[1]
                if signature is None and index == 0 and need_signature:
                    signature = _SKIP_SIGNATURE
                if signature is not None:
                    part["thoughtSignature"] = signature
                parts.append(part)
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
        elif role == "tool":
            call_id = str(message.get("tool_call_id", ""))
            name = names.get(call_id) or str(message.get("name") or "")
            part = {"functionResponse": {"name": name, "response": _tool_result(content)}}
            previous = contents[-1] if contents else None
            if previous and previous["role"] == "user" and "functionResponse" in previous["parts"][-1]:
                previous["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            contents.append({"role": "user", "parts": _parts(content) or [{"text": ""}]})
    return contents, system


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for key in ref[2:].split("/"):
        target = target.get(key) if isinstance(target, dict) else None
    if not isinstance(target, dict):
        return {k: v for k, v in schema.items() if k != "$ref"}
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def schema_for_gemini(schema: Any, root: Any = None, depth: int = 0) -> dict[str, Any]:
    """A JSON Schema rewritten into the subset Gemini's ``Schema`` accepts (see the module docstring)."""
    if not isinstance(schema, dict) or depth > _MAX_SCHEMA_DEPTH:
        return {}
    root = schema if root is None else root
    schema = _resolve(schema, root)
    all_of = schema.get("allOf")
    if isinstance(all_of, list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for branch in all_of:
            branch = _resolve(branch, root) if isinstance(branch, dict) else {}
            merged = {
                **branch,
                **merged,
                "properties": {**branch.get("properties", {}), **merged.get("properties", {})},
            }
        schema = merged
    out: dict[str, Any] = {key: schema[key] for key in _SCHEMA_KEYS if key in schema}
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        if len(kinds) < len(kind):
            out["nullable"] = True
        if len(kinds) > 1:
            out["anyOf"] = [schema_for_gemini({**schema, "type": k}, root, depth + 1) for k in kinds]
            return out
        kind = kinds[0] if kinds else None
    if isinstance(kind, str):
        out["type"] = kind.upper()
    if schema.get("nullable") is True:
        out["nullable"] = True
    branches = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(branches, list):
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if len(kept) < len(branches):
            out["nullable"] = True
        converted = [schema_for_gemini(b, root, depth + 1) for b in kept]
        if len(converted) == 1 and "type" not in out:
            out.update(converted[0])
        elif converted:
            out["anyOf"] = converted
    values = [schema["const"]] if "const" in schema else schema.get("enum")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        out["enum"] = values
        out.setdefault("type", "STRING")
    if schema.get("format") in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = schema["format"]
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        out["properties"] = {str(k): schema_for_gemini(v, root, depth + 1) for k, v in properties.items()}
        required = [r for r in schema.get("required") or () if r in properties]
        if required:
            out["required"] = required
    if "items" in schema:
        out["items"] = schema_for_gemini(schema["items"], root, depth + 1)
    return out


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    declarations = []
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not function.get("name"):
            continue
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = schema_for_gemini(function.get("parameters"))
        if parameters.get("properties"):
            declaration["parameters"] = parameters
        declarations.append(declaration)
    if not declarations:
        return {}
    out: dict[str, Any] = {"tools": [{"functionDeclarations": declarations}]}
    choice = body.get("tool_choice")
    config: dict[str, Any] | None = None
    if choice in ("auto", "none", "required"):
        config = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    if config is not None:
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


def _generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool):
        config["maxOutputTokens"] = limit
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        json_schema = response_format.get("json_schema")
        if isinstance(json_schema, dict) and isinstance(json_schema.get("schema"), dict):
            config["responseSchema"] = schema_for_gemini(json_schema["schema"])
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort in _LEVELS:
        if _is_legacy(model):
            budget = _BUDGETS[effort] or (128 if "pro" in model else 0)  # 2.5 Pro cannot turn thinking off
            config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
        else:  # no "minimal"/"none" level on every Gemini 3+ model: the lowest common one is "low"
            thoughts = effort not in ("none", "minimal")
            config["thinkingConfig"] = {"thinkingLevel": _LEVELS[effort], "includeThoughts": thoughts}
    return config


def _chat_request(call: UpstreamCall) -> dict[str, Any]:
    body = call.body
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    contents, system = _contents(messages, call.model)
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    request.update(_tools(body))
    config = _generation_config(body, call.model)
    if config:
        request["generationConfig"] = config
    return request


def _embedding_texts(body: dict[str, Any]) -> list[str]:
    value = body.get("input")
    items = [value] if isinstance(value, str) or (value and isinstance(value[0], int)) else list(value or ())
    return [item if isinstance(item, str) else " ".join(map(str, item)) for item in items]


def _embeddings_request(call: UpstreamCall) -> dict[str, Any]:
    name = call.model if call.model.startswith("models/") else f"models/{call.model}"
    dims = call.body.get("dimensions")
    extra = {"outputDimensionality": dims} if isinstance(dims, int) else {}
    texts = _embedding_texts(call.body)
    return {"requests": [{"model": name, "content": {"parts": [{"text": t}]}, **extra} for t in texts]}


# --------------------------------------------------------------------------------------------- responses


def usage_from(metadata: Any) -> Usage:
    """Canonical usage from Gemini's ``usageMetadata`` (see the module docstring for the arithmetic)."""
    if not isinstance(metadata, dict):
        return Usage()
    thoughts = int(metadata.get("thoughtsTokenCount") or 0)
    return Usage(
        prompt_tokens=int(metadata.get("promptTokenCount") or 0) + int(metadata.get("toolUsePromptTokenCount") or 0),
        completion_tokens=int(metadata.get("candidatesTokenCount") or 0) + thoughts,
        cached_tokens=int(metadata.get("cachedContentTokenCount") or 0),
        reasoning_tokens=thoughts,
    )


def _finish(reason: Any, has_calls: bool) -> str:
    if reason in _LENGTH:
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def _call_id(response_id: str, index: int, call: dict[str, Any], signature: Any) -> str:
    given = call.get("id")
    if isinstance(given, str) and given:
        base = given
    else:
        seed = f"{response_id}|{index}|{call.get('name')}|{orjson.dumps(call.get('args') or {}).decode()}"
        base = f"call_{index}_{hashlib.sha256(seed.encode()).hexdigest()[:16]}"
    return f"{base}{_SIGNATURE_MARK}{signature}" if isinstance(signature, str) and signature else base


@dataclasses.dataclass(slots=True)
class _Piece:
    """What one ``GenerateContentResponse`` (whole answer or stream event) says, in canonical terms."""

    text: list[str] = dataclasses.field(default_factory=list)
    thoughts: list[str] = dataclasses.field(default_factory=list)
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    finish: Any = None
    blocked: bool = False


def _read(data: dict[str, Any], response_id: str, first_call: int) -> _Piece:
    piece = _Piece()
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        piece.blocked = isinstance(feedback, dict) and bool(feedback.get("blockReason"))
        return piece
    candidate = candidates[0] if isinstance(candidates[0], dict) else {}
    piece.finish = candidate.get("finishReason")
    content = candidate.get("content")
    for part in content.get("parts") or () if isinstance(content, dict) else ():
        if not isinstance(part, dict):
            continue
        call = part.get("functionCall")
        if isinstance(call, dict):
            index = first_call + len(piece.calls)
            arguments = orjson.dumps(call.get("args") or {}).decode()
            call_id = _call_id(response_id, index, call, part.get("thoughtSignature"))
            function = {"name": str(call.get("name", "")), "arguments": arguments}
            piece.calls.append({"id": call_id, "type": "function", "function": function})
        elif isinstance(part.get("text"), str):
            (piece.thoughts if part.get("thought") is True else piece.text).append(part["text"])
    return piece


def _completion_id(data: dict[str, Any]) -> str:
    response_id = data.get("responseId")
    return f"chatcmpl-{response_id}" if isinstance(response_id, str) and response_id else f"chatcmpl-{uuid.uuid4().hex}"


def _estimate_tokens(texts: Iterable[str]) -> int:
    return sum((len(text) + 3) // 4 for text in texts)


def _embeddings_response(call: UpstreamCall, body: bytes) -> ParsedResponse:
    data = orjson.loads(body)
    vectors = [list(e.get("values") or ()) for e in data.get("embeddings") or () if isinstance(e, dict)]
    metadata = data.get("usageMetadata")
    if isinstance(metadata, dict) and metadata.get("promptTokenCount") is not None:
        usage = Usage(prompt_tokens=int(metadata["promptTokenCount"]))
    else:
        usage = Usage(prompt_tokens=_estimate_tokens(_embedding_texts(call.body)))
    out = embeddings_body(model=call.model, vectors=vectors, usage=usage)
    if call.body.get("encoding_format") == "base64":
        # OpenAI clients that ask for base64 decode it themselves; send little-endian float32, as OpenAI does.
        shaped = orjson.loads(out)
        for item in shaped["data"]:
            floats = item["embedding"]
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode("ascii")
        out = orjson.dumps(shaped)
    return ParsedResponse(body=out, usage=usage, response_model=call.model)


class GeminiStreamTranslator:
    """Turns Gemini SSE (one whole ``GenerateContentResponse`` per event) into canonical chunks as they come."""

    __slots__ = ("_buffer", "_calls", "_done", "_finished", "_model", "_out", "_wants_usage", "usage")

    def __init__(self, *, model: str, client_wants_usage: bool) -> None:
        self._buffer = b""
        self._model = model
        self._wants_usage = client_wants_usage
        self._out: ChunkWriter | None = None
        self._calls = 0
        self._finished = False
        self._done = False
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:  # Google frames events with CRLF; a CR split from its LF stays in the buffer
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            out.extend(self._event(event))
        return out

    def finish(self) -> list[bytes]:
        rest, self._buffer = self._buffer.replace(b"\r", b""), b""
        out = self._event(rest) if rest.strip() else []
        if self._done:
            return out
        self._done = True
        started = self._out is not None
        writer = self._writer({})
        if not started:
            out.append(writer.role())
        if not self._finished:  # the stream ended without a finishReason
            out.append(writer.finish("tool_calls" if self._calls else "stop"))
        return [*out, *writer.usage_and_done(self.usage)]

    def _writer(self, data: dict[str, Any]) -> ChunkWriter:
        if self._out is None:
            self._out = ChunkWriter(id=_completion_id(data), model=self._model, include_usage=self._wants_usage)
        return self._out

    def _event(self, event: bytes) -> list[bytes]:
        if self._done:
            return []
        lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
        payload = b"\n".join(lines) if lines else event  # errors may come as bare JSON, not SSE-framed
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        if isinstance(data, list) and data:
            data = data[0]
        if not isinstance(data, dict):
            return []
        out: list[bytes] = []
        started = self._out is not None
        writer = self._writer(data)
        if not started:
            out.append(writer.role())
        error = data.get("error")
        if isinstance(error, dict):
            self._done = True
            message = str(error.get("message") or "upstream error")
            return [*out, writer.error(message, str(error.get("status") or "upstream_error").lower())]
        if "usageMetadata" in data:
            self.usage = usage_from(data["usageMetadata"])
        piece = _read(data, str(data.get("responseId") or ""), self._calls)
        out.extend(writer.reasoning(text) for text in piece.thoughts if text)
        out.extend(writer.content(text) for text in piece.text if text)
        for call in piece.calls:
            function = call["function"]
            out.append(writer.tool_call_start(self._calls, call["id"], function["name"], function["arguments"]))
            self._calls += 1
        if (piece.finish or piece.blocked) and not self._finished:
            self._finished = True
            out.append(writer.finish("content_filter" if piece.blocked else _finish(piece.finish, self._calls > 0)))
        return out


class GeminiAdapter:
    """Adapter for Google's Generative Language API (AI Studio keys); see the module docstring for the mapping."""

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        if call.endpoint == "embeddings":
            body, action = _embeddings_request(call), "batchEmbedContents"
        else:
            body = _chat_request(call)
            action = "streamGenerateContent?alt=sse" if call.stream else "generateContent"
        headers = {"content-type": "application/json", **call.extra_headers}
        if call.provider.api_key:
            headers[_KEY_HEADER] = call.provider.api_key
        if call.stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=f"{call.provider.base_url}/{_model_path(call.model)}:{action}",
            headers=headers,
            body=orjson.dumps(body),
            stream=call.stream,
            provider_id=call.provider.id,
        )

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse:
        body = response.body or b"{}"
        if call.endpoint == "embeddings":
            return _embeddings_response(call, body)
        data = orjson.loads(body)
        piece = _read(data, str(data.get("responseId") or ""), 0)
        usage = usage_from(data.get("usageMetadata"))
        finish = "content_filter" if piece.blocked else _finish(piece.finish, bool(piece.calls))
        text = "".join(piece.text)
        out = completion_body(
            id=_completion_id(data),
            model=call.model,
            content=text if text or not piece.calls else None,
            finish_reason=finish,
            usage=usage,
            tool_calls=piece.calls or None,
            reasoning_content="".join(piece.thoughts) or None,
        )
        version = data.get("modelVersion")
        return ParsedResponse(body=out, usage=usage, response_model=version if isinstance(version, str) else None)

    def stream(self, call: UpstreamCall) -> GeminiStreamTranslator:
        return GeminiStreamTranslator(model=call.model, client_wants_usage=call.client_wants_usage)

    def error_message(self, response: UpstreamResponse) -> str:
        """Google's ``error.message``, plus the server's suggested retry delay when it gives one."""
        body = response.body or b""
        data = error_json(response)
        if data is None:
            return error_text(response)
        if isinstance(data, list) and data:
            data = data[0]
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return body.decode("utf-8", "replace")[:500]
        message = str(error["message"]).strip()
        for detail in error.get("details") or ():
            if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
                delay = detail.get("retryDelay")
                if isinstance(delay, str) and delay:
                    message = f"{message} (retry after {delay})"
        return message
