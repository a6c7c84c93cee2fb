"""A protocol-faithful fake of Amazon Bedrock Runtime, served on a real localhost socket.

It speaks the wire protocol the official ``boto3`` ``bedrock-runtime`` client speaks (the fidelity tests prove
it), so the gateway's Bedrock adapter can be trusted against it::

    with FakeBedrock() as fake:
        client = boto3.client("bedrock-runtime", endpoint_url=fake.base_url, region_name=fake.region,
                              aws_access_key_id=fake.access_key, aws_secret_access_key=fake.secret_key)
        client.converse(modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": "Hi"}]}])

Endpoints (rest-json, as Bedrock):

* ``POST /model/{modelId}/converse`` -- a JSON ``ConverseResponse`` (output.message.content blocks,
  stopReason, usage, metrics) with an ``x-amzn-RequestId`` header.
* ``POST /model/{modelId}/converse-stream`` -- ``application/vnd.amazon.eventstream``: binary frames
  (prelude with CRC32, ``:event-type`` / ``:content-type`` / ``:message-type`` headers, JSON payload with
  Bedrock's ``p`` padding field, message CRC32), one write per frame: messageStart, contentBlockStart (tool
  use), contentBlockDelta (text word by word, reasoning, tool input in 8-character fragments),
  contentBlockStop, messageStop, metadata.
* ``POST /model/{modelId}/invoke`` -- embeddings: Titan (``{"inputText"}`` -> ``{"embedding",
  "inputTextTokenCount"}``) and Cohere (``{"texts", "input_type"}`` -> ``{"embeddings", "id",
  "response_type", "texts"}``), token counts also in ``x-amzn-bedrock-input-token-count``.

Authentication is VERIFIED, as AWS does: ``Authorization: AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/
bedrock/aws4_request, SignedHeaders=..., Signature=...`` is recomputed with botocore from the request as
received (path, signed headers, body bytes) and the fake's known credentials; a wrong key is 403
``UnrecognizedClientException``, a wrong signature, scope or stale ``X-Amz-Date`` 403
``InvalidSignatureException``, no credentials 403 ``MissingAuthenticationTokenException``. A Bedrock API key
(``Authorization: Bearer``) is accepted when it equals :attr:`FakeBedrock.bearer_token`.

Errors are Bedrock's: body ``{"message": "..."}`` and header ``x-amzn-ErrorType: <Type>:http://internal...``.
Unknown model ids are 400 ``ValidationException`` ("The provided model identifier is invalid."), as on Bedrock.
The fake validates more strictly than Bedrock in one way, to catch adapter bugs: unknown request fields are a
400 ``ValidationException``. It also enforces Converse's real rules: the conversation starts with a user turn
and alternates, text blocks are not blank, toolUse/toolResult blocks need a ``toolConfig``.

Deterministic behaviour (the same rules as the OpenAI fake, so tests can predict values):

* The reply is ``"fake reply to: <last user text>"`` (first ``MAX_ECHO_WORDS`` words); when the last user turn
  holds tool results, ``"tool said: <result text>"``. ``maxTokens`` cuts it to that many words (stopReason
  ``max_tokens``); a word equal to a ``stopSequences`` entry cuts before it (``stop_sequence``).
* ``inputTokens`` = words of every text (system, messages, tool results) + 3 per message; ``outputTokens`` =
  reply words (+ reasoning words, + words of ``name input-json`` per tool call).
* Triggers in the last user text (any case), with a ``toolConfig``: ``call tools`` calls every declared tool
  in parallel (at most 3), ``call tool`` calls the first (or the ``toolChoice.tool`` one); a ``toolChoice``
  of ``any``/``tool`` forces a call. Tool input is ``{"input": <last user text>}``; the text block before the
  calls says ``"Calling <names>."``; stopReason ``tool_use``.
* ``guardrail`` -> the guardrail's canned answer and stopReason ``guardrail_intervened``; ``think`` -> a
  reasoningContent block first; ``use cache`` -> 8 prompt tokens read from and 4 written to the prompt cache
  (fewer for prompts under 12 tokens), taken out of ``inputTokens`` as Bedrock reports them; ``stream error``
  -> a streamed answer breaks after its first text delta with a ``throttlingException`` exception frame.

Fault injection, per request, by header or model-name segment (see ``tests.fakes.openai_upstream``):
``x-fake-status: 429`` / ``fake-status-429`` (429 also sends ``retry-after: 1``, which Bedrock itself does not),
``x-fake-delay`` / ``fake-delay-2.5``, ``x-fake-close`` / ``fake-close``, ``x-fake-close-after: 3`` /
``fake-close-after-3`` (streams: drop the connection after 3 frames), ``x-fake-chunk-delay`` /
``fake-chunk-delay-0.1``. Order: record -> authenticate -> delay -> close -> status -> validate -> answer.
Every request, rejected ones included, is recorded in :attr:`FakeBedrock.requests`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import struct
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes._server import FakeServer
from tests.fakes.openai_upstream import Faults, embedding_for, resolve_faults

DEFAULT_ACCESS_KEY = "AKIAFAKEBEDROCK00001"
DEFAULT_SECRET_KEY = "fakeBedrockSecretKey/0123456789abcdefghij"
DEFAULT_BEARER_TOKEN = "bedrock-api-key-ZmFrZS1iZWRyb2Nr"
DEFAULT_REGION = "us-east-1"
CHAT_MODELS: tuple[str, ...] = (
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "amazon.nova-lite-v1:0",
    "amazon.nova-pro-v1:0",
    "meta.llama3-1-8b-instruct-v1:0",
    "mistral.mistral-large-2407-v1:0",
    "cohere.command-r-v1:0",
)
EMBEDDING_MODELS: dict[str, int] = {  # model -> default dimensions
    "amazon.titan-embed-text-v2:0": 1024,
    "amazon.titan-embed-text-v1": 1536,
    "cohere.embed-english-v3": 1024,
    "cohere.embed-multilingual-v3": 1024,
}
MAX_ECHO_WORDS = 32
PER_MESSAGE_TOKENS = 3
GUARDRAIL_ANSWER = "Sorry, the model cannot answer this question."
CACHE_READ, CACHE_WRITE = 8, 4
MAX_SKEW = dt.timedelta(minutes=5)

_ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_AUTH_RE = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_INJECTED: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    401: ("UnrecognizedClientException", "The security token included in the request is invalid."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The model returned an error. Try your request again."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The system encountered an unexpected error during processing. Try again."),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}
_CONVERSE_FIELDS = {
    "messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
    "promptVariables", "additionalModelResponseFieldPaths", "requestMetadata", "performanceConfig",
    "serviceTier", "outputConfig",
}  # fmt: skip
_INFERENCE_FIELDS = {"maxTokens", "temperature", "topP", "stopSequences"}
_BLOCK_KINDS = {"text", "image", "document", "video", "toolUse", "toolResult", "reasoningContent", "cachePoint"}
_TOOL_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
_PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


# ---------------------------------------------------------------- the event-stream encoding (independent of
# providers/_eventstream.py on purpose: the boto3 tests check this one, the adapter tests check the decoder)


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude + prelude CRC, string headers, payload, message CRC."""
    raw_headers = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 16 + len(raw_headers) + len(payload), len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, body: Mapping[str, Any]) -> bytes:
    """A Bedrock stream event; Bedrock pads every payload with a ``p`` field (length hiding), so do we."""
    padded = {**body, "p": _PADDING[: 1 + len(event_type) % 40]}
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_frame(headers, orjson.dumps(padded))


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_frame(headers, orjson.dumps({"message": message}))


# ---------------------------------------------------------------- SigV4 verification


def verify_sigv4(
    *,
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    region: str,
    now: dt.datetime | None = None,
) -> tuple[str, str] | None:
    """``None`` when the request is signed right, else (error type, message) as AWS would answer (403).

    ``headers`` are lower-cased. The signature is recomputed with botocore over the request exactly as it
    arrived: the raw path, the values of the headers named in ``SignedHeaders`` and the body bytes.
    """
    authorization = headers.get("authorization")
    if not authorization:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    found = _AUTH_RE.fullmatch(authorization.strip())
    if found is None:
        return "IncompleteSignatureException", f"Authorization header requires well-formed SigV4: {authorization!r}"
    if found["key"] != credentials.access_key:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    if found["service"] != "bedrock":
        return "InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'."
    if found["region"] != region:
        return "InvalidSignatureException", f"Credential should be scoped to a valid region, not '{found['region']}'."
    if headers.get("x-amz-security-token", credentials.token) != credentials.token:
        return "UnrecognizedClientException", "The security token included in the request is invalid."
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return "IncompleteSignatureException", "X-Amz-Date header is missing or malformed."
    current = now or dt.datetime.now(dt.UTC)
    if abs(current - signed_at) > MAX_SKEW or stamp[:8] != found["date"]:
        return "InvalidSignatureException", f"Signature expired: {stamp} is out of range of {current:%Y%m%dT%H%M%SZ}"
    names = found["signed"].split(";")
    if "host" not in names or any(name not in headers for name in names):
        return "InvalidSignatureException", "Signed headers are missing from the request."
    request = AWSRequest(
        method=method,
        url=f"http://{headers['host']}{raw_path}",
        data=body,
        headers={name: headers[name] for name in names},
    )
    request.context["timestamp"] = stamp
    signer = SigV4Auth(credentials, "bedrock", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, found["signature"]):
        return (
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.",
        )
    return None


# ---------------------------------------------------------------- helpers


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str  # raw, as on the wire (percent-escapes kept)
    model: str  # decoded model id from the path
    operation: str  # converse | converse-stream | invoke | other
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    json: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Answer:
    """A deterministic Converse answer, built once and rendered whole or as frames."""

    text: str = ""
    reasoning: str = ""
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: dict[str, int] = field(default_factory=dict)
    stream_error: bool = False


def _error(status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    all_headers = {"x-amzn-RequestId": str(uuid.uuid4()), "x-amzn-ErrorType": f"{kind}:{_ERROR_NAMESPACE}"}
    all_headers.update(headers or {})
    return web.Response(
        body=orjson.dumps({"message": message}), status=status, content_type="application/json", headers=all_headers
    )


def _invalid(message: str) -> web.Response:
    return _error(400, "ValidationException", message)


def _words(text: str) -> list[str]:
    return text.split()


def _block_text(blocks: Iterable[Any]) -> str:
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, dict):
            if isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif isinstance(block.get("json"), (dict, list)):
                parts.append(orjson.dumps(block["json"]).decode())
    return " ".join(parts)


def _tool_results(blocks: Iterable[Any]) -> list[str]:
    return [
        _block_text(b["toolResult"].get("content") or ()) for b in blocks if isinstance(b, dict) and "toolResult" in b
    ]


def _message_words(message: Mapping[str, Any]) -> int:
    content = message.get("content") or ()
    return len(_words(_block_text(content))) + sum(len(_words(text)) for text in _tool_results(content))


def _validate_blocks(blocks: Any, where: str) -> str | None:
    if not isinstance(blocks, list) or not blocks:
        return f"The content field in the Message object at {where} is empty. Add a ContentBlock object to the content field and try again."  # noqa: E501
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in _BLOCK_KINDS:
            return f"The ContentBlock object at {where}.content.{i} must set exactly one of its members."
        if "text" in block and (not isinstance(block["text"], str) or not block["text"].strip()):
            return f"The text field in the ContentBlock object at {where}.content.{i} is blank. Add text to the text field, and try again."  # noqa: E501
        image = block.get("image")
        if image is not None:
            source = image.get("source") if isinstance(image, dict) else None
            if image.get("format") not in _IMAGE_FORMATS or not isinstance(source, dict):
                return f"The image at {where}.content.{i} has an unsupported format or no source."
            if "bytes" in source:
                try:
                    base64.b64decode(source["bytes"], validate=True)
                except (binascii.Error, TypeError, ValueError):
                    return f"The image bytes at {where}.content.{i} are not valid base64."
        use = block.get("toolUse")
        if use is not None and not (
            isinstance(use, dict) and use.get("toolUseId") and use.get("name") and isinstance(use.get("input"), dict)
        ):
            return f"The toolUse at {where}.content.{i} needs toolUseId, name and an input object."
        result = block.get("toolResult")
        if result is not None and not (
            isinstance(result, dict) and result.get("toolUseId") and isinstance(result.get("content"), list)
        ):
            return f"The toolResult at {where}.content.{i} needs toolUseId and a content list."
    return None


def validate_converse(body: Any) -> str | None:
    """The ValidationException message Bedrock would answer for this Converse body, or None."""
    if not isinstance(body, dict):
        return "Malformed input request, please reformat your input and try again."
    unknown = sorted(set(body) - _CONVERSE_FIELDS)
    if unknown:
        return f"Unknown fields in the request: {', '.join(unknown)}."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "A conversation must start with a user message. Try again with a conversation that starts with a user message."  # noqa: E501
    uses_tools = False
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if i == 0 and role != "user":
            return "A conversation must start with a user message. Try again with a conversation that starts with a user message."  # noqa: E501
        if role not in ("user", "assistant") or (i and messages[i - 1].get("role") == role):
            return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."  # noqa: E501
        problem = _validate_blocks(message.get("content"), f"messages.{i}")
        if problem:
            return problem
        uses_tools = uses_tools or any("toolUse" in b or "toolResult" in b for b in message["content"])
    system = body.get("system", [])
    if not isinstance(system, list) or any(
        not isinstance(b, dict) or not str(b.get("text", "x")).strip() for b in system
    ):
        return "The system field must be a list of non-blank SystemContentBlock objects."
    inference = body.get("inferenceConfig", {})
    if not isinstance(inference, dict) or set(inference) - _INFERENCE_FIELDS:
        return "The inferenceConfig field has unknown members."
    max_tokens = inference.get("maxTokens", 1)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "The maximum tokens you requested must be at least 1."
    for name in ("temperature", "topP"):
        value = inference.get(name, 0.5)
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            return f"The value of {name} must be between 0 and 1."
    stops = inference.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        return "stopSequences must be a list of non-empty strings."
    config = body.get("toolConfig")
    if config is None:
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
            if uses_tools
            else None
        )
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list) or not tools:
        return "The toolConfig.tools field must hold at least one tool."
    for tool in tools:
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if not isinstance(spec, dict) or not _TOOL_NAME_RE.fullmatch(str(spec.get("name"))):
            return "Each tool needs a toolSpec with a name matching [a-zA-Z0-9_-]{1,64}."
        if not isinstance((spec.get("inputSchema") or {}).get("json"), dict):
            return f"The tool {spec['name']} needs inputSchema.json."
    choice = config.get("toolChoice")
    if choice is not None and (
        not isinstance(choice, dict) or len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool")
    ):
        return "toolChoice must set exactly one of auto, any or tool."
    return None


def answer_for(body: Mapping[str, Any], *, request_key: str) -> _Answer:
    """The fake's deterministic answer to a (valid) Converse body; see the module docstring."""
    messages: list[dict[str, Any]] = body["messages"]
    last = next((m for m in reversed(messages) if m["role"] == "user"), messages[-1])
    results = _tool_results(last["content"])
    user_text = _block_text(last["content"])
    trigger = user_text.lower()
    answer = _Answer()
    config = body.get("toolConfig") or {}
    names = [t["toolSpec"]["name"] for t in config.get("tools") or () if "toolSpec" in t]
    choice = config.get("toolChoice") or {}
    called: list[str] = []
    if names and not results:
        if "call tools" in trigger:
            called = names[:3]
        elif "call tool" in trigger or "any" in choice or "tool" in choice:
            called = [choice["tool"]["name"] if "tool" in choice else names[0]]
    if called:
        answer.text = f"Calling {', '.join(called)}."
        for i, name in enumerate(called):
            digest = hashlib.sha256(f"{request_key}/{i}".encode()).digest()
            tool_id = "tooluse_" + base64.urlsafe_b64encode(digest).decode()[:22]
            answer.tool_uses.append({"toolUseId": tool_id, "name": name, "input": {"input": user_text}})
        answer.stop_reason = "tool_use"
    elif "guardrail" in trigger:
        answer.text, answer.stop_reason = GUARDRAIL_ANSWER, "guardrail_intervened"
    else:
        echoed = " ".join(_words(" ".join(results) if results else user_text)[:MAX_ECHO_WORDS])
        words = _words(f"tool said: {echoed}" if results else f"fake reply to: {echoed}")
        inference = body.get("inferenceConfig") or {}
        for stop in inference.get("stopSequences") or ():
            if stop in words:
                words, answer.stop_reason = words[: words.index(stop)], "stop_sequence"
        limit = inference.get("maxTokens")
        if isinstance(limit, int) and limit < len(words):
            words, answer.stop_reason = words[:limit], "max_tokens"
        answer.text = " ".join(words)
    if "think" in trigger:
        answer.reasoning = f"Thinking about: {' '.join(_words(user_text)[:8])}"
    answer.stream_error = "stream error" in trigger
    prompt = sum(_message_words(m) + PER_MESSAGE_TOKENS for m in messages)
    prompt += sum(len(_words(str(b.get("text", "")))) for b in body.get("system") or ())
    output = len(_words(answer.text)) + len(_words(answer.reasoning))
    output += sum(len(_words(f"{u['name']} {orjson.dumps(u['input']).decode()}")) for u in answer.tool_uses)
    usage = {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output}
    if "use cache" in trigger:  # part of the prompt read from / written to the cache, out of inputTokens
        read = min(CACHE_READ, prompt)
        written = min(CACHE_WRITE, prompt - read)
        usage.update(cacheReadInputTokens=read, cacheWriteInputTokens=written, inputTokens=prompt - read - written)
    answer.usage = usage
    return answer


def _content_blocks(answer: _Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.reasoning:
        reasoning = {"reasoningText": {"text": answer.reasoning, "signature": "fake-signature"}}
        blocks.append({"reasoningContent": reasoning})
    if answer.text:
        blocks.append({"text": answer.text})
    blocks.extend({"toolUse": use} for use in answer.tool_uses)
    return blocks


def stream_frames(answer: _Answer) -> list[bytes]:
    """The ConverseStream frames of an answer, in Bedrock's order."""
    frames = [event_frame("messageStart", {"role": "assistant"})]
    index = 0
    if answer.reasoning:
        for i, word in enumerate(_words(answer.reasoning)):
            delta = {"reasoningContent": {"text": word if i == 0 else f" {word}"}}
            frames.append(event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        signature = {"reasoningContent": {"signature": "fake-signature"}}
        frames.append(event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": signature}))
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if answer.text:
        for i, word in enumerate(_words(answer.text)):
            delta = {"text": word if i == 0 else f" {word}"}
            frames.append(event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
            if answer.stream_error:
                return [*frames, exception_frame("throttlingException", _INJECTED[429][1])]
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for use in answer.tool_uses:
        start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
        frames.append(event_frame("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        arguments = orjson.dumps(use["input"]).decode()
        for at in range(0, len(arguments), 8):
            delta = {"toolUse": {"input": arguments[at : at + 8]}}
            frames.append(event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    frames.append(event_frame("messageStop", {"stopReason": answer.stop_reason}))
    frames.append(event_frame("metadata", {"usage": answer.usage, "metrics": {"latencyMs": 42}}))
    return frames


# ---------------------------------------------------------------- the server


class FakeBedrock(FakeServer[RecordedRequest]):
    """The fake server; use as a context manager (or ``start()`` / ``stop()``).

    ``base_url`` is ``http://127.0.0.1:PORT`` (what ``endpoint_url`` / a provider's ``base_url`` takes).
    """

    def __init__(
        self,
        *,
        access_key: str = DEFAULT_ACCESS_KEY,
        secret_key: str = DEFAULT_SECRET_KEY,
        session_token: str | None = None,
        bearer_token: str = DEFAULT_BEARER_TOKEN,
        region: str = DEFAULT_REGION,
        models: Iterable[str] = CHAT_MODELS,
        chunk_delay: float = 0.0,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        self.access_key, self.secret_key, self.session_token = access_key, secret_key, session_token
        self.bearer_token = bearer_token
        self.region = region
        self.models = tuple(models)
        self.chunk_delay = chunk_delay
        self._credentials = Credentials(access_key, secret_key, session_token)

    @property
    def base_url(self) -> str:
        return self.root_url

    def _routes(self, app: web.Application) -> None:
        app.router.add_post(r"/model/{model:.+}/{operation:converse|converse-stream|invoke}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._unknown)

    async def _record(self, request: web.Request, model: str, operation: str) -> RecordedRequest:
        raw = await request.read()
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        recorded = RecordedRequest(request.method, request.raw_path, model, operation, headers, raw, parsed)
        with self._lock:
            self._requests.append(recorded)
        return recorded

    # ------------------------------------------------------------ handlers

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        await self._record(request, "", "other")
        return _error(404, "UnknownOperationException", f"Unknown operation {request.method} {request.path}")

    def _authenticate(self, recorded: RecordedRequest) -> web.Response | None:
        authorization = recorded.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            if hmac.compare_digest(authorization[7:].strip(), self.bearer_token):
                return None
            return _error(
                403, "UnrecognizedClientException", "Invalid API Key format: Must be a valid Bedrock API key."
            )
        problem = verify_sigv4(
            method=recorded.method,
            raw_path=recorded.path,
            headers=recorded.headers,
            body=recorded.raw_body,
            credentials=self._credentials,
            region=self.region,
        )
        return _error(403, *problem) if problem else None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, operation = request.match_info["model"], request.match_info["operation"]
        recorded = await self._record(request, model, operation)
        refused = self._authenticate(recorded)
        if refused is not None:
            return refused
        try:
            faults = resolve_faults(recorded.headers, model)
        except ValueError as exc:
            return _invalid(str(exc))
        if faults.delay:
            await asyncio.sleep(faults.delay)
        if faults.close:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=204)  # never reaches the client
        if faults.status is not None:
            kind, message = _INJECTED.get(faults.status, ("InternalServerException", f"Error {faults.status}."))
            extra = {"retry-after": "1"} if faults.status == 429 else None
            return _error(faults.status, kind, f"{message} (injected by FakeBedrock)", extra)
        if operation == "invoke":
            return self._invoke(model, recorded.json)
        if model not in self.models and not model.startswith("fake"):
            return _invalid("The provided model identifier is invalid.")
        problem = validate_converse(recorded.json)
        if problem:
            return _invalid(problem)
        answer = answer_for(recorded.json, request_key=recorded.raw_body.hex()[:64] + str(len(self._requests)))
        if operation == "converse-stream":
            return await self._stream(request, faults, answer)
        body = {
            "output": {"message": {"role": "assistant", "content": _content_blocks(answer)}},
            "stopReason": answer.stop_reason,
            "usage": answer.usage,
            "metrics": {"latencyMs": 42},
        }
        return web.Response(
            body=orjson.dumps(body), content_type="application/json", headers={"x-amzn-RequestId": str(uuid.uuid4())}
        )

    async def _stream(self, request: web.Request, faults: Faults, answer: _Answer) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": str(uuid.uuid4())},
        )
        await response.prepare(request)
        delay = self.chunk_delay if faults.chunk_delay is None else faults.chunk_delay
        try:
            for sent, frame in enumerate(stream_frames(answer)):
                if faults.close_after is not None and sent >= faults.close_after:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if sent and delay:
                    await asyncio.sleep(delay)
                await response.write(frame)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    def _invoke(self, model: str, body: Any) -> web.Response:
        dims = EMBEDDING_MODELS.get(model)
        if dims is None or not isinstance(body, dict):
            return _invalid("The provided model identifier is invalid." if dims is None else "Malformed input request.")
        if model.startswith("cohere."):
            texts = body.get("texts")
            if not isinstance(texts, list) or not 0 < len(texts) <= 96 or not all(isinstance(t, str) for t in texts):
                return _invalid("Malformed input request: #/texts: expected type: JSONArray of 1 to 96 strings")
            if body.get("input_type") not in ("search_document", "search_query", "classification", "clustering"):
                return _invalid("Malformed input request: #: required key [input_type] not found")
            vectors = [embedding_for(t, model=model, dims=dims) for t in texts]
            tokens = sum(len(_words(t)) for t in texts)
            data: dict[str, Any] = {
                "embeddings": vectors,
                "id": str(uuid.uuid4()),
                "response_type": "embeddings_floats",
                "texts": texts,
            }
        else:
            text = body.get("inputText")
            if not isinstance(text, str) or set(body) - {"inputText", "dimensions", "normalize", "embeddingTypes"}:
                return _invalid("Malformed input request: #: extraneous key or #/inputText: expected type: String")
            dims = body.get("dimensions", dims)
            if model.endswith("v2:0") and dims not in (256, 512, 1024):
                return _invalid("Malformed input request: #/dimensions: must be one of 256, 512, 1024")
            tokens = len(_words(text))
            data = {"embedding": embedding_for(text, model=model, dims=dims), "inputTextTokenCount": tokens}
        headers = {
            "x-amzn-RequestId": str(uuid.uuid4()),
            "X-Amzn-Bedrock-Input-Token-Count": str(tokens),
            "X-Amzn-Bedrock-Invocation-Latency": "12",
        }
        return web.Response(body=orjson.dumps(data), content_type="application/json", headers=headers)
