"""The Anthropic Messages adapter: canonical (OpenAI Chat Completions) <-> ``POST {base_url}/messages``.

Request mapping (canonical -> Anthropic)
=========================================  ====================================================================
system / developer messages                top-level ``system`` (joined with blank lines; text blocks when a part
                                           carries ``cache_control``), wherever they appear in the conversation
user / assistant messages                  ``messages``; consecutive turns of one role are merged (Anthropic
                                           wants alternation); empty text parts and empty turns are left out
content parts: text                        ``text`` blocks (``cache_control`` kept)
               image_url data: URL         ``image`` block, ``base64`` source
               image_url http(s) URL       ``image`` block, ``url`` source
               file (PDF data: URL)        ``document`` block, ``base64`` source
assistant ``tool_calls``                   ``tool_use`` blocks (arguments parsed to ``input``; arguments that are
                                           not a JSON object are sent as ``{"_raw_arguments": "..."}``)
``tool`` messages                          ``tool_result`` blocks in a user turn (consecutive results merge into
                                           one user message, before any text that follows them)
tools (type function)                      ``{name, description, input_schema}``
tool_choice auto / none / required / named ``{"type": "auto"}`` / ``none`` / ``any`` / ``{"type": "tool", name}``
parallel_tool_calls: false                 ``tool_choice.disable_parallel_tool_use: true``
max_completion_tokens / max_tokens         ``max_tokens`` (REQUIRED by Anthropic). Absent: the catalog's max output
                                           for the model, else ``DEFAULT_MAX_TOKENS`` (4096)
stop (string or list)                      ``stop_sequences``
temperature (clamped to Anthropic's 0..1)  ``temperature``; ``top_p`` only when no temperature is given (Claude
top_p                                      4.1+ rejects both together). Both are dropped for models that reject
                                           sampling parameters (Claude 4.7 and later, Fable, Mythos), when
                                           thinking is on, and under API version 2026-10-21 (which removed them)
reasoning_effort                           Claude 4.6+ / Fable / Mythos: ``thinking: {"type": "adaptive"}`` and
                                           ``output_config.effort`` (minimal->low; low, medium, high, xhigh, max
                                           as is). Claude 3.7-4.5: ``thinking: {"type": "enabled",
                                           "budget_tokens"}`` with 20% / 50% / 80% of ``max_tokens`` for low
                                           (and minimal) / medium / high (at least 1024; no thinking when
                                           ``max_tokens`` <= 1024). ``none``, ids the adapter cannot read, and
                                           requests that force a tool (Anthropic refuses thinking then): none
response_format json_schema                ``output_config.format: {"type": "json_schema", "schema"}``
user                                       ``metadata.user_id``
=========================================  ====================================================================

Dropped, because Anthropic has no equivalent: ``seed``, ``n`` (always one choice), ``presence_penalty``,
``frequency_penalty``, ``logit_bias``, ``logprobs``/``top_logprobs``, ``response_format`` json_object and text
(no schema-less JSON mode), ``service_tier``, ``stream_options`` (Anthropic always reports usage), the tools'
``strict`` flag (strict tool use is model-dependent upstream), audio parts, legacy ``functions``.

Response mapping: text blocks -> ``content`` (joined); ``tool_use`` -> ``tool_calls``; ``thinking`` ->
``reasoning_content`` (``redacted_thinking`` is encrypted and has no readable text, so it adds nothing);
stop reasons end_turn/stop_sequence/pause_turn -> stop, max_tokens/model_context_window_exceeded -> length,
tool_use -> tool_calls, refusal -> content_filter; usage see ``read_usage``; ``id`` = ``chatcmpl-<msg id>``.
Thinking signatures cannot travel through the canonical form, so a multi-turn tool conversation with budget
thinking on may be refused upstream (Anthropic wants the thinking block back with the ``tool_use``).

Provider options: ``api_version`` (the ``anthropic-version`` header, default ``2023-06-01``, which still
accepts sampling parameters) and ``beta`` (sent as ``anthropic-beta``). Anthropic has no embeddings API.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import orjson

from ._anthropic_stream import AnthropicStreamTranslator, AnthropicUsageTap, finish_reason, read_usage
from .canonical import completion_body, error_json, error_text
from .types import ParsedResponse, UpstreamCall, UpstreamRequest, UpstreamResponse, Usage

__all__ = ["DEFAULT_API_VERSION", "DEFAULT_MAX_TOKENS", "AnthropicAdapter", "AnthropicStreamTranslator"]

DEFAULT_API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
"""``max_tokens`` when neither the request nor the catalog gives one: Anthropic requires the field."""
_NO_SAMPLING_VERSION = "2026-10-21"  # the API version that removed temperature, top_p and top_k
_MIN_THINKING_BUDGET = 1024
_BUDGET_SHARE = {"minimal": 0.2, "low": 0.2, "medium": 0.5, "high": 0.8, "xhigh": 0.8, "max": 0.8}
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
_TOOL_CHOICE = {"auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"}}
_NAMED_ID = re.compile(r"claude-([a-z]+)-(\d+)(?:-(\d{1,2}))?(?!\d)")  # claude-opus-4-1, claude-sonnet-4-2025...
_NUMBERED_ID = re.compile(r"claude-(\d+)(?:-(\d))?-([a-z]+)")  # claude-3-7-sonnet-20250219
_ALWAYS_NEW = ("fable", "mythos")  # families that started at Claude 5 (and the unversioned Mythos Preview)
_DATA_URL = re.compile(r"data:([^;,]+)?((?:;[^;,]*)*),(.*)", re.DOTALL)


def _generation(model: str) -> tuple[str, tuple[int, int]] | None:
    """(family, (major, minor)) read from a Claude model id, or None for ids of another shape."""
    named = _NAMED_ID.search(model)
    if named:
        return named.group(1), (int(named.group(2)), int(named.group(3) or 0))
    numbered = _NUMBERED_ID.search(model)
    if numbered:
        return numbered.group(3), (int(numbered.group(1)), int(numbered.group(2) or 0))
    family = re.search(r"claude-([a-z]+)", model)
    return (family.group(1), (5, 0)) if family and family.group(1) in _ALWAYS_NEW else None


def _thinking_mode(model: str) -> str | None:
    """``adaptive`` (Claude 4.6+), ``budget`` (3.7 to 4.5) or None (older, or not readable)."""
    generation = _generation(model)
    if generation is None:
        return None
    family, version = generation
    if family in _ALWAYS_NEW or version >= (4, 6):
        return "adaptive"
    return "budget" if version >= (3, 7) else None


def _rejects_sampling(model: str) -> bool:
    """Claude 4.7 and later (and Fable, Mythos) answer 400 to any temperature, top_p or top_k."""
    generation = _generation(model)
    return generation is not None and (generation[0] in _ALWAYS_NEW or generation[1] >= (4, 7))


def _data_source(url: str) -> dict[str, Any] | None:
    """A ``base64`` source from a data: URL (percent-encoded data is re-encoded), None when it is not one."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        return None
    media_type, params, payload = match.group(1) or "text/plain", match.group(2), match.group(3)
    if ";base64" not in params:
        payload = base64.b64encode(urllib.parse.unquote_to_bytes(payload)).decode("ascii")
    return {"type": "base64", "media_type": media_type, "data": payload}


def _block(part: object) -> dict[str, Any] | None:
    """One canonical content part as an Anthropic content block; None for parts with no equivalent."""
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    if not isinstance(part, dict):
        return None
    kind = part.get("type")
    block: dict[str, Any] | None = None
    if kind == "text" and part.get("text"):
        block = {"type": "text", "text": str(part["text"])}
    elif kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str) and url:
            source = _data_source(url) if url.startswith("data:") else {"type": "url", "url": url}
            block = {"type": "image", "source": source} if source else None
    elif kind == "file":
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        source = _data_source(data) if isinstance(data, str) else None
        block = {"type": "document", "source": source} if source else None
    if block is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _blocks(content: object) -> list[dict[str, Any]]:
    parts = content if isinstance(content, list) else [content]
    return [block for block in map(_block, parts) if block is not None]


def _tool_use(call: object) -> dict[str, Any] | None:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return None
    function = call["function"]
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        arguments = {"_raw_arguments": raw}
    return {
        "type": "tool_use",
        "id": str(call.get("id", "")),
        "name": str(function.get("name", "")),
        "input": arguments,
    }


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id", ""))}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    else:
        parts = _blocks(content)
        if parts:
            block["content"] = parts
    return block


def _turns(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, alternating user/assistant turns) from canonical messages."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(b for b in _blocks(message.get("content")) if b["type"] == "text")
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            blocks += [b for b in map(_tool_use, message.get("tool_calls") or ()) if b is not None]
        else:
            role, blocks = "user", _blocks(message.get("content"))
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0].keys() == {"type", "text"}:
            turn["content"] = content[0]["text"]  # the short form, as Anthropic's own examples send it
    return system, turns


def _system(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if any("cache_control" in block for block in blocks):
        return blocks
    return "\n\n".join(block["text"] for block in blocks)


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = []
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not function.get("name"):
            continue
        schema = function.get("parameters")
        converted: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            converted["description"] = function["description"]
        converted["input_schema"] = schema if isinstance(schema, dict) else {"type": "object", "properties": {}}
        tools.append(converted)
    return tools


def _tool_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = body.get("tool_choice")
    mapped: dict[str, Any] | None = None
    if isinstance(choice, str):
        mapped = dict(_TOOL_CHOICE[choice]) if choice in _TOOL_CHOICE else None
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    if body.get("parallel_tool_calls") is False and (mapped is None or mapped["type"] != "none"):
        mapped = mapped or {"type": "auto"}
        mapped["disable_parallel_tool_use"] = True
    return mapped


def _max_tokens(call: UpstreamCall) -> int:
    for field in ("max_completion_tokens", "max_tokens"):
        value = call.body.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return call.max_output_tokens or DEFAULT_MAX_TOKENS


def _thinking(call: UpstreamCall, max_tokens: int, forced_tool: bool) -> tuple[dict[str, Any] | None, str | None]:
    """(``thinking``, ``output_config.effort``) for the request's ``reasoning_effort``."""
    effort = call.body.get("reasoning_effort")
    if not isinstance(effort, str) or effort not in _EFFORT or forced_tool:
        return None, None
    mode = _thinking_mode(call.model)
    if mode == "adaptive":
        return {"type": "adaptive"}, _EFFORT[effort]
    if mode == "budget" and max_tokens > _MIN_THINKING_BUDGET:
        budget = min(max(_MIN_THINKING_BUDGET, int(max_tokens * _BUDGET_SHARE[effort])), max_tokens - 1)
        return {"type": "enabled", "budget_tokens": budget}, None
    return None, None


def _payload(call: UpstreamCall) -> dict[str, Any]:
    body = call.body
    system, messages = _turns(body.get("messages") or [])
    max_tokens = _max_tokens(call)
    out: dict[str, Any] = {"model": call.model, "max_tokens": max_tokens}
    if system:
        out["system"] = _system(system)
    out["messages"] = messages
    stop = body.get("stop")
    stops = (
        [stop] if isinstance(stop, str) else [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
    )
    if stops:
        out["stop_sequences"] = stops
    tools = _tools(body)
    choice = _tool_choice(body) if tools else None
    if tools:
        out["tools"] = tools
    if choice is not None:
        out["tool_choice"] = choice
    thinking, effort = _thinking(call, max_tokens, forced_tool=choice is not None and choice["type"] in ("any", "tool"))
    version = call.provider.options.get("api_version", DEFAULT_API_VERSION)
    if thinking is None and version < _NO_SAMPLING_VERSION and not _rejects_sampling(call.model):
        temperature, top_p = body.get("temperature"), body.get("top_p")
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
            out["temperature"] = min(float(temperature), 1.0)
        elif isinstance(top_p, (int, float)) and not isinstance(top_p, bool):
            out["top_p"] = top_p
    if thinking is not None:
        out["thinking"] = thinking
    output_config: dict[str, Any] = {"effort": effort} if effort else {}
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        if isinstance(spec, dict) and isinstance(spec.get("schema"), dict):
            output_config["format"] = {"type": "json_schema", "schema": spec["schema"]}
    if output_config:
        out["output_config"] = output_config
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if call.stream:
        out["stream"] = True
    return out


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = block.get("input")
    return {
        "id": str(block.get("id", "")),
        "type": "function",
        "function": {"name": str(block.get("name", "")), "arguments": orjson.dumps(arguments or {}).decode()},
    }


_COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")


class AnthropicAdapter:
    """Adapter for the Anthropic Messages API (api.anthropic.com and anything that speaks it)."""

    native_dialect = "anthropic"

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        if call.endpoint != "chat":
            raise ValueError(
                f"Provider '{call.provider.id}' (Anthropic) has no {call.endpoint} endpoint: Anthropic offers "
                "no embeddings API. Use an embeddings model of another provider."
            )
        options = call.provider.options
        headers = {
            "content-type": "application/json",
            "anthropic-version": options.get("api_version", DEFAULT_API_VERSION),
        }
        if options.get("beta"):
            headers["anthropic-beta"] = options["beta"]
        if call.provider.api_key:
            headers["x-api-key"] = call.provider.api_key
        if call.stream:
            headers["accept"] = "text/event-stream"
        headers.update(call.extra_headers)
        return UpstreamRequest(
            method="POST",
            url=call.provider.base_url + "/messages",
            headers=headers,
            body=orjson.dumps(_payload(call)),
            stream=call.stream,
            provider_id=call.provider.id,
        )

    def build_native_request(
        self, call: UpstreamCall, body: dict[str, Any], headers: Mapping[str, str]
    ) -> UpstreamRequest:
        """A Messages client's own body, model rewritten; its ``anthropic-version``/``-beta`` headers kept."""
        options = call.provider.options
        upstream_headers = {
            "content-type": "application/json",
            "anthropic-version": headers.get("anthropic-version") or options.get("api_version", DEFAULT_API_VERSION),
        }
        beta = headers.get("anthropic-beta") or options.get("beta")
        if beta:
            upstream_headers["anthropic-beta"] = beta
        if call.provider.api_key:
            upstream_headers["x-api-key"] = call.provider.api_key
        stream = body.get("stream") is True
        if stream:
            upstream_headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=call.provider.base_url + "/messages",
            headers=upstream_headers,
            body=orjson.dumps({**body, "model": call.model}),
            stream=stream,
            provider_id=call.provider.id,
        )

    def build_count_request(
        self, call: UpstreamCall, body: dict[str, Any], headers: Mapping[str, str]
    ) -> UpstreamRequest:
        """Anthropic's exact ``/messages/count_tokens`` for a Messages body (generation-only fields removed)."""
        counted = {k: v for k, v in body.items() if k in _COUNTED_FIELDS}
        request = self.build_native_request(call, counted, headers)
        request.url = call.provider.base_url + "/messages/count_tokens"
        request.headers.pop("accept", None)
        return request

    def native_usage(self, body: bytes) -> Usage:
        data = orjson.loads(body)
        return read_usage(data.get("usage") if isinstance(data, dict) else None)

    def native_stream(self, call: UpstreamCall) -> AnthropicUsageTap:
        return AnthropicUsageTap()

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse:
        data = orjson.loads(response.body or b"{}")
        blocks = [b for b in data.get("content") or () if isinstance(b, dict)]
        text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
        reasoning = "".join(str(b.get("thinking", "")) for b in blocks if b.get("type") == "thinking")
        tool_calls = [_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
        usage = read_usage(data.get("usage"))
        model = data.get("model") if isinstance(data.get("model"), str) and data.get("model") else call.model
        body = completion_body(
            id=f"chatcmpl-{data.get('id', 'anthropic')}",
            model=model,
            content=text if text or not tool_calls else None,
            finish_reason=finish_reason(data.get("stop_reason")),
            usage=usage,
            tool_calls=tool_calls or None,
            reasoning_content=reasoning or None,
        )
        return ParsedResponse(body=body, usage=usage, response_model=model)

    def stream(self, call: UpstreamCall) -> AnthropicStreamTranslator:
        return AnthropicStreamTranslator(model=call.model, include_usage=call.client_wants_usage)

    def error_message(self, response: UpstreamResponse) -> str:
        body = response.body or b""
        data = error_json(response)
        if data is None:
            return error_text(response)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
            return str(error["message"])
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
        return body.decode("utf-8", "replace")[:500]
