"""OpenAI-dialect ingress: read the body (bounded), parse it once, check the fields the gateway relies on.

Only what routing and accounting need is validated here (``model``, ``messages``/``input``, ``stream``,
``stream_options``); everything else is the upstream's to judge, so new OpenAI parameters pass through
untouched. Errors name the field and say what was expected.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..call import Call, Reply
from ..errors import InvalidRequest, PayloadTooLarge
from ..pipeline import Handler
from ..services import Services

__all__ = ["IngressStage", "read_body"]


async def read_body(call: Call, limit: int) -> bytes:
    declared = call.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {int(declared)} bytes; the limit is {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in call.request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidRequest('Request body is empty. Send a JSON object, such as {"model": ..., "messages": [...]}.')
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Invalid JSON in the request body at line {exc.lineno}, column {exc.colno}: {exc.msg}.",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"Request body must be a JSON object, got a JSON {type(data).__name__}.")
    return data


def _type_name(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def _require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise InvalidRequest(
            "Missing required field 'model'. Name a model such as 'mock/mock-1'; GET /v1/models lists them.",
            param="model",
            code="missing_required_parameter",
        )
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest(
            f"Field 'model' must be a non-empty string, got {_type_name(model)}.",
            param="model",
            code="invalid_type",
        )
    return model


def _check_messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest(
            'Missing required field \'messages\': an array of {"role": ..., "content": ...} objects.',
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list) or not messages:
        shown = "an empty array" if isinstance(messages, list) else _type_name(messages)
        raise InvalidRequest(
            f"Field 'messages' must be a non-empty array of message objects, got {shown}.",
            param="messages",
            code="invalid_type",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"messages[{index}] must be an object with a string 'role' (system, user, assistant or tool).",
                param=f"messages[{index}]",
                code="invalid_type",
            )


def _check_input(body: dict[str, Any]) -> None:
    value = body.get("input")
    if value is None:
        raise InvalidRequest(
            "Missing required field 'input': a string or an array of strings to embed.",
            param="input",
            code="missing_required_parameter",
        )
    if isinstance(value, str) or (isinstance(value, list) and value):
        return
    raise InvalidRequest(
        f"Field 'input' must be a string or a non-empty array, got {_type_name(value)}.",
        param="input",
        code="invalid_type",
    )


class IngressStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.limit = services.settings.max_body_bytes

    async def __call__(self, call: Call) -> Reply:
        call.raw = await read_body(call, self.limit)
        body = call.body = _parse(call.raw)
        call.model = _require_model(body)
        if call.endpoint == "chat":
            _check_messages(body)
            stream = body.get("stream", False)
            if not isinstance(stream, bool) and stream is not None:
                raise InvalidRequest(
                    f"Field 'stream' must be a boolean, got {_type_name(stream)}.",
                    param="stream",
                    code="invalid_type",
                )
            call.stream = bool(stream)
            options = body.get("stream_options")
            if options is not None and not isinstance(options, dict):
                raise InvalidRequest(
                    f"Field 'stream_options' must be an object, got {_type_name(options)}.",
                    param="stream_options",
                    code="invalid_type",
                )
            call.client_wants_usage = bool(options and options.get("include_usage"))
        else:
            _check_input(body)
        return await self.next(call)
