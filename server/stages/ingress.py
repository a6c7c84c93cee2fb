"""Ingress: read the body (bounded), parse it once, and hand it to the client's dialect to become canonical.

On the way back, a translated call's answer is turned into the client's dialect here too (the adapter pair of
DESIGN.md's lifecycle); OpenAI-dialect calls pass through untouched, bytes and all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
from starlette.requests import ClientDisconnect

from providers.ingress import Conversational, DialectError, IngressDialect
from providers.types import StreamTranslator

from ..call import Call, Reply
from ..errors import InvalidRequest, NotFound, PayloadTooLarge
from ..pipeline import Handler
from ..services import Services
from ..storage import StoredResponse

__all__ = ["IngressStage", "parse_json", "read_body"]


async def read_body(call: Call, limit: int) -> bytes:
    declared = call.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {int(declared)} bytes; the limit is {limit} bytes.")
    # The ASGI messages themselves, not ``Request.stream()``: its generator (and the empty chunk it ends with) is
    # a few µs a call for a body that nearly always arrives in one message.
    receive = call.request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(raw: bytes) -> dict[str, Any]:
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
        kind = "array" if isinstance(data, list) else type(data).__name__
        raise InvalidRequest(f"Request body must be a JSON object, got a JSON {kind}.")
    return data


async def _translated(chunks: AsyncIterator[bytes], translator: StreamTranslator) -> AsyncIterator[bytes]:
    # The events one chunk produced go on as one chunk: one write to the client, not one per event.
    async for chunk in chunks:
        events = translator.feed(chunk)
        if events:
            yield events[0] if len(events) == 1 else b"".join(events)
    events = translator.finish()
    if events:
        yield b"".join(events)


class IngressStage:
    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next
        self.limit = services.settings.max_body_bytes
        self.stored = services.stored_responses

    async def __call__(self, call: Call) -> Reply:
        call.raw = await read_body(call, self.limit)
        dialect: IngressDialect = call.dialect
        data = parse_json(call.raw)
        conversational = cast(Conversational, dialect) if hasattr(dialect, "continues") else None
        if conversational is not None:
            data = await self._continue(call, conversational, data)
        try:
            ingested = dialect.ingest(call.endpoint, data)
        except DialectError as exc:
            raise InvalidRequest(exc.message, param=exc.param, code=exc.code) from None
        call.body, call.model, call.stream = ingested.body, ingested.model, ingested.stream
        call.client_wants_usage, call.translated = ingested.client_wants_usage, ingested.translated
        call.client_body = ingested.client_body
        reply = await self.next(call)
        if ingested.dropped:
            reply.headers["alephant-dropped-tools"] = ",".join(ingested.dropped)
        if not call.translated or call.native:
            return reply
        assert call.target is not None
        if reply.stream is None:
            reply.body = dialect.response(reply.body, model=call.model, client=call.client_body)
            if conversational is not None and reply.status < 400:
                self._store(call, conversational, data, orjson.loads(reply.body))
        else:
            translator = dialect.stream(model=call.model, client=call.client_body)
            reply.stream = _translated(reply.stream, translator)
            if conversational is not None:
                reply.stream = self._stored_at_end(call, conversational, data, reply.stream, translator)
        reply.media_type = dialect.media_type if reply.stream is None else reply.media_type
        return reply

    async def _continue(self, call: Call, dialect: Conversational, data: dict[str, Any]) -> dict[str, Any]:
        """A request continuing a stored answer gets that conversation prepended (one store read, if not in memory)."""
        previous = dialect.continues(data)
        if previous is None:
            return data
        workspace = call.principal.workspace_id if call.principal else ""
        stored = await self.stored.recall(previous, workspace_id=workspace)
        if stored is None:
            raise NotFound(
                f"Previous response '{previous}' was not found in this workspace (responses are kept when the "
                "request did not set store: false).",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return dialect.continued(data, stored.items)

    def _store(self, call: Call, dialect: Conversational, data: dict[str, Any], answer: dict[str, Any]) -> None:
        transcript = dialect.transcript(data, answer)
        if transcript is None:
            return
        response_id, items = transcript
        principal = call.principal
        self.stored.remember(
            StoredResponse(
                id=response_id,
                workspace_id=principal.workspace_id if principal else "",
                key_id=principal.key_id if principal else None,
                request_id=call.request_id,
                created_at=call.created_at,
                response=answer,
                items=items,
            )
        )

    async def _stored_at_end(
        self,
        call: Call,
        dialect: Conversational,
        data: dict[str, Any],
        stream: AsyncIterator[bytes],
        translator: StreamTranslator,
    ) -> AsyncIterator[bytes]:
        async for chunk in stream:
            yield chunk
        final = getattr(translator, "final", None)
        if isinstance(final, dict) and final.get("status") == "completed":
            self._store(call, dialect, data, final)
