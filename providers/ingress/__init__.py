"""Client dialects: how a request in some API's shape becomes the canonical request, and the answer goes back.

The gateway's pipeline speaks one form (OpenAI Chat Completions). A dialect is the adapter pair at its edge:

    dialect.ingest(endpoint, data)   -> Ingested          client body -> canonical body (+ model, stream flags)
    dialect.response(canonical)      -> bytes             canonical answer -> client's shape
    dialect.stream(model)            -> StreamTranslator  canonical SSE -> client's SSE, event by event
    dialect.error_body(...)          -> bytes             a gateway error in the client's error shape

``DialectError`` carries a message that names the client's field, so errors read in the client's terms.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from ..types import Endpoint, StreamTranslator

__all__ = ["DialectError", "Ingested", "IngressDialect", "dialect"]


class DialectError(ValueError):
    """The client's body is wrong in its own dialect's terms."""

    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclasses.dataclass(slots=True, kw_only=True)
class Ingested:
    body: dict[str, Any]  # canonical
    model: str
    stream: bool = False
    client_wants_usage: bool = False
    translated: bool = False  # False: ``body`` is the client's own body, so its bytes may be forwarded as-is
    client_body: dict[str, Any] | None = None  # the client's body, for upstreams that speak its dialect natively
    dropped: tuple[str, ...] = ()  # parts of the request no upstream of this path can honour (hosted tools)


class IngressDialect(Protocol):
    name: str
    media_type: str

    def ingest(self, endpoint: Endpoint, data: dict[str, Any]) -> Ingested: ...

    def response(self, canonical: bytes, *, model: str, client: dict[str, Any] | None = None) -> bytes: ...

    def stream(self, *, model: str, client: dict[str, Any] | None = None) -> StreamTranslator: ...

    def error_body(self, *, status: int, type: str, code: str, message: str, param: str | None) -> bytes: ...


class Conversational(Protocol):
    """A dialect whose answers can be stored and continued (OpenAI Responses: ``previous_response_id``).

    The dialect stays pure; the gateway does the storage I/O around it::

        previous = dialect.continues(data)             # an id to load, or None
        data = dialect.continued(data, stored_items)   # the body with the earlier conversation prepended
        record = dialect.transcript(data, answer)      # (id, items) to store, or None when store is false
    """

    def continues(self, data: dict[str, Any]) -> str | None: ...

    def continued(self, data: dict[str, Any], items: list[Any]) -> dict[str, Any]: ...

    def transcript(self, data: dict[str, Any], answer: dict[str, Any]) -> tuple[str, list[Any]] | None: ...


def dialect(name: str) -> IngressDialect:
    """The dialect by name; imported lazily so a gateway only loads the dialects it serves."""
    if name == "openai":
        from .openai import OpenAIDialect

        return OpenAIDialect()
    if name == "anthropic":
        from .anthropic import AnthropicDialect

        return AnthropicDialect()
    if name == "responses":
        from .responses import ResponsesDialect

        return ResponsesDialect()
    raise LookupError(f"no client dialect named {name!r}")
