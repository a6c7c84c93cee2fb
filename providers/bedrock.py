"""The AWS Bedrock adapter: Converse / ConverseStream for chat, InvokeModel for embeddings, SigV4-signed.

Endpoints (``{region}`` in the catalog's base URL is filled in here)::

    POST {base}/model/{modelId}/converse          chat
    POST {base}/model/{modelId}/converse-stream   chat, stream=true (binary AWS event stream, see _eventstream)
    POST {base}/model/{modelId}/invoke            embeddings (Titan and Cohere bodies)

Authentication, resolved once per provider row and cached (a botocore session costs ~20 ms and, without keys
in the environment, may probe the instance metadata service for seconds):
  1. a Bedrock API key: ``AWS_BEARER_TOKEN_BEDROCK`` in the environment (or named as the row's
     ``api_key_env``) is sent as ``Authorization: Bearer``, as botocore itself prefers it;
  2. else SigV4 over the exact body bytes with ``botocore.auth.SigV4Auth`` (service ``bedrock``); the access
     key is the row's key (``AWS_ACCESS_KEY_ID``), the secret and session token come from
     ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, or from botocore's full chain (profiles, SSO, roles).
Signing costs ~160 µs a request (measured; all of it inside botocore). Region: ``options.region``, else
``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1.

Canonical (OpenAI) -> Converse:
    system / developer messages     -> ``system: [{text}]``
    user content text / image_url   -> ``{text}`` / ``{image: {format, source: {bytes}}}`` (data: URLs) or
                                       ``source.s3Location`` (s3:// URIs); http(s) image URLs are refused (400):
                                       Bedrock cannot fetch them
    assistant content / tool_calls  -> ``{text}`` / ``{toolUse: {toolUseId, name, input}}``
    tool messages                   -> ``{toolResult: {toolUseId, content: [{text}]}}`` in a user turn
    consecutive same-role turns     -> merged (Converse requires user/assistant alternation)
    max_completion_tokens / max_tokens, temperature, top_p, stop -> ``inferenceConfig``
    tools                           -> ``toolConfig.tools[].toolSpec {name, description, inputSchema.json}``
    tool_choice auto / required / {function} -> ``toolChoice`` auto / any / tool
    tool_choice none                -> no ``toolConfig`` (Converse has no "none"); when the history holds tool
                                       blocks the tools must stay declared, and the model may still call one
    history with tool blocks, no tools -> placeholder toolSpecs for the names used (Converse requires them)
    response_format json_schema     -> ``outputConfig.textFormat`` (json_schema)
Dropped (no Converse equivalent): seed, presence/frequency_penalty, logit_bias, logprobs, user, metadata,
store, service_tier, parallel_tool_calls, reasoning_effort, response_format json_object, tool ``strict``,
message ``name``; assistant ``reasoning_content`` (Bedrock needs its signature back, which canonical lacks).
Refused with 400 (ValueError): n > 1, audio/file content parts, non-function tools, unparseable tool arguments.

Converse -> canonical: text blocks joined into ``content``; toolUse -> ``tool_calls``; reasoningContent ->
``reasoning_content``; stopReason end_turn / stop_sequence -> stop, max_tokens /
model_context_window_exceeded -> length, tool_use -> tool_calls, guardrail_intervened / content_filtered ->
content_filter, anything else -> stop. Usage: prompt_tokens = inputTokens + cacheReadInputTokens +
cacheWriteInputTokens (Bedrock's inputTokens excludes both), cached_tokens = reads, cache_write_tokens =
writes. The id is ``chatcmpl-`` + the ``x-amzn-RequestId`` header (a stream gets a fresh one: the translator
never sees headers). Stream exception frames (throttlingException, ...) become an OpenAI error event.

Embeddings: ``amazon.titan-embed-*`` take one text a call (a list of more than one is refused, 400;
``dimensions`` maps for v2); ``cohere.embed-*`` take a batch (``input_type`` search_document; dimensions
dropped). Vectors are returned as floats whatever ``encoding_format`` asked (the openai SDK's default
base64 request decodes floats transparently). Token counts come from ``x-amzn-bedrock-input-token-count``.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session

from ._eventstream import EventStreamDecoder, EventStreamError, Message
from .canonical import ChunkWriter, completion_body, embeddings_body
from .types import ParsedResponse, ProviderSpec, UpstreamCall, UpstreamRequest, UpstreamResponse, Usage

__all__ = ["BedrockAdapter", "BedrockStreamTranslator", "converse_request", "embedding_request"]

DEFAULT_REGION = "us-east-1"
BEARER_ENV = "AWS_BEARER_TOKEN_BEDROCK"
_SERVICE = "bedrock"
_JSON = "application/json"
_EVENTSTREAM = "application/vnd.amazon.eventstream"
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_PLACEHOLDER_SCHEMA = {"type": "object", "properties": {}}
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def _finish_reason(stop_reason: object) -> str:
    return _FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _read_usage(data: object) -> Usage:
    """Converse ``usage`` in the canonical sense: cache reads and writes are part of the prompt."""
    if not isinstance(data, dict):
        return Usage()
    read = int(data.get("cacheReadInputTokens") or 0)
    written = int(data.get("cacheWriteInputTokens") or 0)
    return Usage(
        prompt_tokens=int(data.get("inputTokens") or 0) + read + written,
        completion_tokens=int(data.get("outputTokens") or 0),
        cached_tokens=read,
        cache_write_tokens=written,
    )


# ---------------------------------------------------------------- request translation


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict)]
    return []


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        mime = header[5:].partition(";")[0]
        image_format = _IMAGE_FORMATS.get(mime.removeprefix("image/"))
        if not mime.startswith("image/") or image_format is None or ";base64" not in header:
            raise ValueError(f"images must be base64 png, jpeg, gif or webp data: URLs, not {header[:40]!r}")
        return {"image": {"format": image_format, "source": {"bytes": data}}}
    if url.startswith("s3://"):
        image_format = _IMAGE_FORMATS.get(url.rpartition(".")[2].lower())
        if image_format is None:
            raise ValueError("s3:// image URIs must end in .png, .jpeg, .jpg, .gif or .webp")
        return {"image": {"format": image_format, "source": {"s3Location": {"uri": url}}}}
    raise ValueError("Bedrock cannot fetch image URLs; send the image as a data: URL (or an s3:// URI)")


def _parts(content: Any) -> list[dict[str, Any]]:
    """User (and tool result) content as Converse blocks; blank text is skipped (Converse rejects it)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": str(part["text"])})
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(_image(str(image.get("url") if isinstance(image, dict) else image or "")))
        else:
            raise ValueError(f"content parts of type {kind!r} are not supported by Bedrock Converse")
    return blocks


def _tool_use(call: Any) -> dict[str, Any]:
    """A canonical tool call as the inside of a Converse ``toolUse`` block."""
    function = call.get("function") or {}
    try:
        arguments = orjson.loads(function.get("arguments") or "{}")
    except orjson.JSONDecodeError:
        raise ValueError(f"tool call {call.get('id')!r} has arguments that are not JSON") from None
    return {"toolUseId": str(call.get("id")), "name": str(function.get("name")), "input": arguments}


class _Turns:
    """Builds the Converse ``messages`` list, merging consecutive same-role turns."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.tool_names: list[str] = []  # tools called in the history, in order, for placeholder specs
        self.has_tool_blocks = False

    def add(self, role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].extend(blocks)
        else:
            self.messages.append({"role": role, "content": blocks})

    def message(self, message: Mapping[str, Any]) -> None:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            self.system.extend({"text": text} for text in _texts(content) if text)
        elif role == "user":
            self.add("user", _parts(content))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = [{"text": text} for text in _texts(content) if text]
            for call in message.get("tool_calls") or ():
                use = _tool_use(call)
                blocks.append({"toolUse": use})
                self.has_tool_blocks = True
                if use["name"] not in self.tool_names:
                    self.tool_names.append(use["name"])
            self.add("assistant", blocks)
        elif role == "tool":
            self.has_tool_blocks = True
            result = {"toolUseId": str(message.get("tool_call_id")), "content": _parts(content)}
            self.add("user", [{"toolResult": result}])
        else:
            raise ValueError(f"messages with role {role!r} are not supported by Bedrock Converse")


def _tool_config(body: Mapping[str, Any], turns: _Turns) -> dict[str, Any] | None:
    specs: list[dict[str, Any]] = []
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise ValueError("only function tools are supported by Bedrock Converse")
        function = tool.get("function") or {}
        spec: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            spec["description"] = function["description"]
        spec["inputSchema"] = {"json": function.get("parameters") or _PLACEHOLDER_SCHEMA}
        specs.append({"toolSpec": spec})
    choice = body.get("tool_choice")
    if not turns.has_tool_blocks and (not specs or choice == "none"):
        return None
    if not specs:
        specs = [
            {"toolSpec": {"name": name, "inputSchema": {"json": _PLACEHOLDER_SCHEMA}}} for name in turns.tool_names
        ]
    config: dict[str, Any] = {"tools": specs}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or not name:
            raise ValueError("tool_choice must be auto, none, required or a function")
        config["toolChoice"] = {"tool": {"name": name}}
    return config


def _inference_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        config["maxTokens"] = limit
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _output_config(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema") or {}
    schema: dict[str, Any] = {"schema": orjson.dumps(spec.get("schema") or {}).decode()}
    for field in ("name", "description"):
        if spec.get(field):
            schema[field] = spec[field]
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}}


def converse_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Converse request body for a canonical chat request (the model goes in the URL, not the body)."""
    if body.get("n") not in (None, 1):
        raise ValueError("n > 1 is not supported by Bedrock Converse")
    turns = _Turns()
    for message in body.get("messages") or ():
        turns.message(message)
    out: dict[str, Any] = {"messages": turns.messages}
    if turns.system:
        out["system"] = turns.system
    inference = _inference_config(body)
    if inference:
        out["inferenceConfig"] = inference
    tools = _tool_config(body, turns)
    if tools:
        out["toolConfig"] = tools
    output = _output_config(body.get("response_format"))
    if output:
        out["outputConfig"] = output
    return out


def embedding_request(model: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The InvokeModel body of an embeddings call, by model family."""
    value = body.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("Bedrock embeddings take input as a string or a list of strings")
    if "cohere.embed" in model:  # also inference profiles (us.cohere.embed-v4:0) and ARNs
        return {"texts": texts, "input_type": "search_document"}
    if len(texts) != 1:
        raise ValueError(f"{model} embeds one text a call; send the inputs one by one")
    request: dict[str, Any] = {"inputText": texts[0]}
    if body.get("dimensions") is not None:
        request["dimensions"] = body["dimensions"]
    return request


# ---------------------------------------------------------------- authentication


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    """Where and how to reach one provider row: resolved once, reused for every request."""

    base_url: str
    region: str
    bearer: str | None
    signer: SigV4Auth | None

    def authorize(self, url: str, body: bytes, headers: dict[str, str]) -> None:
        if self.bearer is not None:
            headers["authorization"] = f"Bearer {self.bearer}"
            return
        if self.signer is None:
            raise ValueError(
                "no AWS credentials: set AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys) "
                f"next to AWS_ACCESS_KEY_ID, or an API key in {BEARER_ENV}"
            )
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        self.signer.add_auth(request)
        headers.update(request.headers.items())


def _credentials(access_key: str | None, env: Mapping[str, str]) -> Credentials | None:
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    if access_key and secret:
        return Credentials(access_key, secret, env.get("AWS_SESSION_TOKEN") or None)
    found: Credentials | None = get_session().get_credentials()  # profiles, SSO, container and instance roles
    return found


def _target(spec: ProviderSpec, env: Mapping[str, str]) -> _Target:
    region = spec.options.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    bearer = spec.api_key if spec.api_key_env == BEARER_ENV else env.get(BEARER_ENV) or None
    signer = None
    if bearer is None:
        credentials = _credentials(spec.api_key, env)
        signer = SigV4Auth(credentials, _SERVICE, region) if credentials is not None else None
    return _Target(spec.base_url.replace("{region}", region), region, bearer, signer)


# ---------------------------------------------------------------- streaming


class BedrockStreamTranslator:
    """ConverseStream event-stream bytes in, canonical SSE chunks out, one event at a time."""

    __slots__ = ("_decoder", "_done", "_finished", "_out", "_started", "_tools", "usage")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self._decoder = EventStreamDecoder()
        self._out = ChunkWriter(id=f"chatcmpl-{uuid.uuid4().hex}", model=model, include_usage=include_usage)
        self._tools: dict[int, int] = {}  # contentBlockIndex -> tool call index
        self._started = self._finished = self._done = False
        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        if self._done:
            return []
        try:
            messages = self._decoder.feed(data)
        except EventStreamError as exc:
            return self._fail(f"Bedrock sent a corrupt event stream: {exc}", "upstream_stream_corrupt")
        out: list[bytes] = []
        for message in messages:
            out += self._message(message)
            if self._done:
                break
        return out

    def finish(self) -> list[bytes]:
        if self._done:
            return []
        if self._decoder.pending:
            return self._fail("Bedrock's event stream ended in the middle of a message", "upstream_stream_cut")
        return self._close()

    def _fail(self, message: str, code: str) -> list[bytes]:
        self._done = True
        return [self._out.error(message, code)]

    def _close(self) -> list[bytes]:
        # a finish chunk only if messageStop never came: then tool calls imply "tool_calls", as OpenAI says
        out = [] if self._finished else [self._out.finish("tool_calls" if self._tools else "stop")]
        self._done = self._finished = True
        return [*self._begin(), *out, *self._out.usage_and_done(self.usage)]

    def _begin(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [self._out.role()]

    def _message(self, message: Message) -> list[bytes]:
        kind = message.headers.get(":message-type")
        if kind == "exception":
            name = str(message.headers.get(":exception-type") or "exception")
            return self._fail(_payload_message(message.payload) or name, name)
        if kind == "error":
            name = str(message.headers.get(":error-code") or "error")
            return self._fail(str(message.headers.get(":error-message") or name), name)
        try:
            data = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return self._fail("Bedrock sent an event that is not a JSON object", "upstream_stream_corrupt")
        return self._event(str(message.headers.get(":event-type")), data)

    def _event(self, event: str, data: dict[str, Any]) -> list[bytes]:
        out = self._begin()
        if event == "contentBlockDelta":
            delta = data.get("delta") or {}
            if delta.get("text"):
                out.append(self._out.content(delta["text"]))
            elif "toolUse" in delta:
                index = self._tools.get(data.get("contentBlockIndex", -1))
                fragment = (delta["toolUse"] or {}).get("input")
                if index is not None and fragment:
                    out.append(self._out.tool_call_arguments(index, fragment))
            elif (delta.get("reasoningContent") or {}).get("text"):
                out.append(self._out.reasoning(delta["reasoningContent"]["text"]))
        elif event == "contentBlockStart":
            start = (data.get("start") or {}).get("toolUse")
            if start:
                index = self._tools[data.get("contentBlockIndex", len(self._tools))] = len(self._tools)
                out.append(self._out.tool_call_start(index, str(start.get("toolUseId")), str(start.get("name"))))
        elif event == "messageStop" and not self._finished:
            self._finished = True
            out.append(self._out.finish(_finish_reason(data.get("stopReason"))))
        elif event == "metadata":
            self.usage = _read_usage(data.get("usage"))
            out += self._close()
        return out


def _payload_message(payload: bytes) -> str:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", "replace")[:500]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("Message") or "")
    return ""


# ---------------------------------------------------------------- the adapter


class BedrockAdapter:
    """Adapter for Amazon Bedrock Runtime (``adapter: bedrock`` in a catalog row)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env
        self._targets: dict[tuple[str, str, str | None, str | None], _Target] = {}

    def _target(self, spec: ProviderSpec) -> _Target:
        key = (spec.id, spec.base_url, spec.api_key, spec.options.get("region"))
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _target(spec, self._env)
        return target

    def build_request(self, call: UpstreamCall) -> UpstreamRequest:
        target = self._target(call.provider)
        # ":" stays literal: aiohttp's URL normalisation would decode %3A before sending, and the signature
        # must cover the path exactly as it goes on the wire. "/" (in ARNs) stays encoded, as it must.
        model = quote(call.model, safe=":")
        if call.endpoint == "embeddings":
            path, payload, accept = "invoke", embedding_request(call.model, call.body), _JSON
        else:
            payload = converse_request(call.body)
            path, accept = ("converse-stream", _EVENTSTREAM) if call.stream else ("converse", _JSON)
        url = f"{target.base_url}/model/{model}/{path}"
        body = orjson.dumps(payload)
        headers = {"content-type": _JSON, "accept": accept, **call.extra_headers}
        target.authorize(url, body, headers)
        return UpstreamRequest(
            method="POST", url=url, headers=headers, body=body, stream=call.stream, provider_id=call.provider.id
        )

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse:
        data = orjson.loads(response.body or b"{}")
        if call.endpoint == "embeddings":
            return self._embeddings(call, response, data)
        texts: list[str] = []
        reasoning: list[str] = []
        tool_calls: list[dict[str, Any]] = []
        for block in ((data.get("output") or {}).get("message") or {}).get("content") or ():
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                arguments = orjson.dumps(use.get("input") or {}).decode()
                function = {"name": use.get("name"), "arguments": arguments}
                tool_calls.append({"id": use.get("toolUseId"), "type": "function", "function": function})
            elif "reasoningContent" in block:
                reasoning.append(((block["reasoningContent"] or {}).get("reasoningText") or {}).get("text") or "")
        usage = _read_usage(data.get("usage"))
        request_id = response.headers.get("x-amzn-requestid") or uuid.uuid4().hex
        body = completion_body(
            id=f"chatcmpl-{request_id}",
            model=call.model,
            content="".join(texts) if texts or not tool_calls else None,
            finish_reason=_finish_reason(data.get("stopReason")),
            usage=usage,
            tool_calls=tool_calls or None,
            reasoning_content="".join(reasoning) or None,
        )
        return ParsedResponse(body=body, usage=usage, response_model=call.model)

    @staticmethod
    def _embeddings(call: UpstreamCall, response: UpstreamResponse, data: dict[str, Any]) -> ParsedResponse:
        found = data.get("embeddings") if "embeddings" in data else [data.get("embedding") or []]
        if isinstance(found, dict):  # Cohere with embedding_types: {"float": [[...]]}
            found = found.get("float")
        vectors: list[list[float]] = found if isinstance(found, list) else []
        tokens = response.headers.get("x-amzn-bedrock-input-token-count") or data.get("inputTextTokenCount") or 0
        usage = Usage(prompt_tokens=int(tokens))
        return ParsedResponse(body=embeddings_body(model=call.model, vectors=vectors, usage=usage), usage=usage)

    def stream(self, call: UpstreamCall) -> BedrockStreamTranslator:
        return BedrockStreamTranslator(model=call.model, include_usage=call.client_wants_usage)

    def error_message(self, response: UpstreamResponse) -> str:
        body = response.body or b""
        message = _payload_message(body).strip() if body else ""
        if message:
            return message
        kind = (response.headers.get("x-amzn-errortype") or "").partition(":")[0]
        return kind or f"HTTP {response.status}"
