"""The OpenAI Chat Completions dialect: the canonical form itself, so ingest only validates.

Only what routing and accounting need is checked (``model``, ``messages``/``input``, ``stream``,
``stream_options``); everything else is the upstream's to judge, so new OpenAI parameters pass through
untouched and the client's bytes can be forwarded as they are (the fast path).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..types import Endpoint, StreamTranslator
from . import DialectError, Ingested

__all__ = ["OpenAIDialect", "type_name"]


def type_name(value: object) -> str:
    """JSON's name for a value's type, for error messages."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def _require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise DialectError(
            "Missing required field 'model'. Name a model such as 'mock/mock-1'; GET /v1/models lists them.",
            param="model",
            code="missing_required_parameter",
        )
    if not isinstance(model, str) or not model.strip():
        raise DialectError(
            f"Field 'model' must be a non-empty string, got {type_name(model)}.", param="model", code="invalid_type"
        )
    return model


def _check_messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise DialectError(
            'Missing required field \'messages\': an array of {"role": ..., "content": ...} objects.',
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        shown = "an empty array" if isinstance(messages, list) else type_name(messages)
        raise DialectError(
            f"Field 'messages' must be a non-empty array of message objects, got {shown}.",
            param="messages",
            code="invalid_type",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise DialectError(
                f"messages[{index}] must be an object with a string 'role' (system, user, assistant or tool).",
                param=f"messages[{index}]",
                code="invalid_type",
            )


def _check_input(body: dict[str, Any]) -> None:
    value = body.get("input")
    if value is None:
        raise DialectError(
            "Missing required field 'input': a string or an array of strings to embed.",
            param="input",
            code="missing_required_parameter",
        )
    if isinstance(value, str) or (isinstance(value, list) and value):
        return
    raise DialectError(
        f"Field 'input' must be a string or a non-empty array, got {type_name(value)}.",
        param="input",
        code="invalid_type",
    )


class _Identity:
    """A stream translator that forwards canonical events untouched."""

    __slots__ = ("usage",)

    def __init__(self) -> None:
        from ..types import Usage

        self.usage = Usage()

    def feed(self, data: bytes) -> list[bytes]:
        return [data]

    def finish(self) -> list[bytes]:
        return []


class OpenAIDialect:
    name = "openai"
    media_type = "application/json"

    def ingest(self, endpoint: Endpoint, data: dict[str, Any]) -> Ingested:
        model = _require_model(data)
        if endpoint == "embeddings":
            _check_input(data)
            return Ingested(body=data, model=model)
        _check_messages(data)
        stream = data.get("stream", False)
        if not isinstance(stream, bool) and stream is not None:
            raise DialectError(
                f"Field 'stream' must be a boolean, got {type_name(stream)}.", param="stream", code="invalid_type"
            )
        options = data.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise DialectError(
                f"Field 'stream_options' must be an object, got {type_name(options)}.",
                param="stream_options",
                code="invalid_type",
            )
        return Ingested(
            body=data,
            model=model,
            stream=bool(stream),
            client_wants_usage=bool(options and options.get("include_usage")),
        )

    def response(self, canonical: bytes, *, model: str, client: dict[str, Any] | None = None) -> bytes:
        return canonical

    def stream(self, *, model: str, client: dict[str, Any] | None = None) -> StreamTranslator:
        return _Identity()

    def error_body(self, *, status: int, type: str, code: str, message: str, param: str | None) -> bytes:
        return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})
