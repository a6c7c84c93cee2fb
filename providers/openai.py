"""The OpenAI (and OpenAI-compatible) adapter: the canonical wire, so translation is (almost) identity.

This is the fast path of the design: the client's bytes go upstream unchanged unless the model id must be
rewritten or, for streams, ``stream_options.include_usage`` must be requested so the gateway can account for
the call. Responses are relayed byte for byte; usage is read by scanning for the ``"usage"`` object instead of
parsing whole bodies (an embeddings body is mostly a vector the gateway never needs to look at).
"""

from __future__ import annotations

import re

import orjson

from .types import ParsedResponse, UpstreamCall, UpstreamRequest, UpstreamResponse, Usage

__all__ = ["OpenAIAdapter", "OpenAIStreamTranslator", "read_usage"]

_PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings"}
_USAGE_KEY = b'"usage"'
_BRACES = re.compile(rb"[{}]")
# orjson parses a 1 KB chat body in ~1.8 µs, faster than the scan's Python overhead (~7 µs); the scan wins on
# big bodies (embeddings: mostly vectors the gateway never reads).
_SCAN_ABOVE = 32 * 1024


def _usage_from_object(data: object) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0) if isinstance(prompt_details, dict) else 0,
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0)
        if isinstance(completion_details, dict)
        else 0,
    )


def read_usage(body: bytes) -> Usage | None:
    """The ``usage`` object of an OpenAI-shaped JSON body; big bodies are scanned rather than parsed.

    Inside JSON strings a quote is escaped, so the bytes ``"usage"`` followed by optional spaces and ``:`` only
    occur as a real key. The usage object holds numbers and nested objects but never strings with braces, so
    matching braces finds its end. ``"usage": null`` (every chunk of a stream that asked for usage) is None.
    """
    if len(body) < _SCAN_ABOVE:
        return _full_parse_usage(body) if _USAGE_KEY in body else None
    at = body.rfind(_USAGE_KEY)
    if at < 0:
        return None
    start = at + len(_USAGE_KEY)
    length = len(body)
    while start < length and body[start] in b" \t\r\n:":
        start += 1
    if start >= length or body[start] != 0x7B:  # not an object: null, or something unexpected
        return None
    depth = 0
    for brace in _BRACES.finditer(body, start):
        depth += 1 if brace.group() == b"{" else -1
        if depth == 0:
            try:
                return _usage_from_object(orjson.loads(body[start : brace.end()]))
            except orjson.JSONDecodeError:
                break
    return _full_parse_usage(body)


def _full_parse_usage(body: bytes) -> Usage | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return _usage_from_object(data.get("usage")) if isinstance(data, dict) else None


class OpenAIStreamTranslator:
    """Relays an OpenAI SSE stream event by event, reading usage and hiding it when the client did not ask.

    Events are forwarded as soon as they are complete (``\\n\\n``-terminated); nothing waits for the end.
    """

    __slots__ = ("_buffer", "_keep_usage", "usage")

    def __init__(self, *, client_wants_usage: bool) -> None:
        self._buffer = b""
        self._keep_usage = client_wants_usage
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        if b"\r" in buffer:
            # A CRLF may straddle two reads: normalise what is whole, keep a trailing CR for the next read.
            buffer = buffer.replace(b"\r\n", b"\n")
        *events, self._buffer = buffer.split(b"\n\n")
        out: list[bytes] = []
        for event in events:
            relayed = self._event(event)
            if relayed is not None:
                out.append(relayed + b"\n\n")
        return out

    def finish(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        if not rest.strip():
            return []
        relayed = self._event(rest)
        return [relayed + b"\n\n"] if relayed is not None else []

    def _event(self, event: bytes) -> bytes | None:
        if _USAGE_KEY not in event:
            return event
        usage = None if b'"usage":null' in event else read_usage(event.partition(b"data:")[2])
        if usage is not None:
            self.usage = usage
        if self._keep_usage:
            return event
        if usage is not None and (b'"choices":[]' in event or b'"choices": []' in event):
            return None  # the usage-only chunk we asked for on the client's behalf
        return event.replace(b',"usage":null', b"").replace(b', "usage": null', b"")


class OpenAIAdapter:
    """Adapter for every upstream that speaks the OpenAI API (OpenAI itself, Groq, vLLM, the mock, ...)."""

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        body = call.body
        rewrite = body.get("model") != call.model
        if rewrite:
            body["model"] = call.model
        limit_field = call.provider.options.get("max_tokens_field")
        if limit_field and limit_field != "max_tokens" and "max_tokens" in body:
            # A provider row may name the field its API wants (OpenAI: max_completion_tokens).
            body[limit_field] = body.pop("max_tokens")
            rewrite = True
        if call.stream and not call.client_wants_usage:
            options = body.get("stream_options")
            body["stream_options"] = (
                {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
            )
            rewrite = True
        headers = {"content-type": "application/json", **call.extra_headers}
        if call.provider.api_key:
            headers["authorization"] = f"Bearer {call.provider.api_key}"
        if call.stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=call.provider.base_url + _PATHS[call.endpoint],
            headers=headers,
            body=call.raw if call.raw and not rewrite else orjson.dumps(body),
            stream=call.stream,
            provider_id=call.provider.id,
        )

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse:
        body = response.body or b""
        return ParsedResponse(body=body, usage=read_usage(body) or Usage())

    def stream(self, call: UpstreamCall) -> OpenAIStreamTranslator:
        return OpenAIStreamTranslator(client_wants_usage=call.client_wants_usage)

    def error_message(self, response: UpstreamResponse) -> str:
        body = response.body or b""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            text = body.decode("utf-8", "replace").strip()
            return text[:500] or f"HTTP {response.status}"
        if isinstance(data, dict):
            error = data.get("error")
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                return str(error["message"])
            if isinstance(error, str):
                return error
            if isinstance(data.get("message"), str):
                return str(data["message"])
        return body.decode("utf-8", "replace")[:500]
