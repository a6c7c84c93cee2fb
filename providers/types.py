"""The provider layer's vocabulary: usage, upstream requests and responses, the transport and adapter contracts.

Everything provider-specific lives in ``providers/``; the gateway (``server/``) talks to it only through the
types in this module. The shape of the conversation is:

    adapter.build_request(call)        -> UpstreamRequest   (translate canonical -> provider wire)
    transport.send(request)            -> UpstreamResponse  (the dispatcher only sends)
    adapter.parse_response(call, resp) -> ParsedResponse    (provider wire -> canonical, plus usage)
    adapter.stream(call)               -> StreamTranslator  (the same, one chunk at a time)
    adapter.map_error(call, resp)      -> UpstreamError     (keeps the provider's status and message)
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, Protocol

__all__ = [
    "Endpoint",
    "ModelInfo",
    "NativePassthrough",
    "ParsedResponse",
    "ProviderAdapter",
    "ProviderSpec",
    "StreamTranslator",
    "TokenCounter",
    "Transport",
    "UpstreamCall",
    "UpstreamRequest",
    "UpstreamResponse",
    "Usage",
]

Endpoint = Literal["chat", "embeddings"]


@dataclasses.dataclass(slots=True)
class Usage:
    """Token counts of one call, in the canonical (OpenAI) sense: cached and reasoning tokens are subsets."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """What the catalog knows of one model beyond its price (prices come from genai-prices)."""

    id: str
    endpoint: Endpoint = "chat"
    context_window: int | None = None
    max_output_tokens: int | None = None
    capabilities: tuple[str, ...] = ()  # tools, vision, reasoning, embeddings


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSpec:
    """One upstream provider: a catalog row, or a custom OpenAI-compatible backend from configuration.

    ``api_key`` is resolved by the gateway from the environment variable named in the row; it never appears in
    ``repr`` so that a spec can be logged safely. ``keys`` is the row's key pool (``api_key_envs``: several
    keys of one provider); ``api_key`` is its first key, and the router rotates to the next on a 429.
    """

    id: str
    adapter: str = "openai"
    transport: str = "http"
    base_url: str = ""
    api_key_env: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)  # the key pool; api_key is keys[0]
    requires_key: bool = True
    models: tuple[str, ...] = ()
    embedding_models: tuple[str, ...] = ()
    display_name: str = ""
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)  # adapter-specific: api_version, region

    configured: bool = False  # named in the gateway's configuration

    @property
    def key_pool(self) -> tuple[str, ...]:
        """Every key of this provider, first key first (one key, or none, when the row has no pool)."""
        return self.keys or ((self.api_key,) if self.api_key else ())

    def with_key(self, key: str) -> ProviderSpec:
        """The same provider speaking with another key of its pool: adapters read ``api_key``."""
        return dataclasses.replace(self, api_key=key)

    @property
    def available(self) -> bool:
        """Usable now: reachable (a base URL, or in-process) and either keyed, or key-less and configured.

        Key-less local servers (Ollama, vLLM, ...) are enabled by listing them in the configuration, so a
        gateway does not advertise models of servers that are not there.
        """
        if self.transport == "mock":
            return True
        if not self.base_url:
            return False
        return bool(self.api_key) if self.requires_key else self.configured


@dataclasses.dataclass(slots=True, kw_only=True)
class UpstreamCall:
    """What the gateway asks of a provider: one endpoint, the canonical body, the upstream model id.

    ``raw`` is the client's body as received, or empty when ``body`` was translated from another dialect.
    Adapters whose wire is the canonical one forward ``raw`` when they need no rewrite (the fast path).
    """

    endpoint: Endpoint
    provider: ProviderSpec
    model: str
    body: dict[str, Any]
    raw: bytes
    stream: bool = False
    client_wants_usage: bool = False
    max_output_tokens: int | None = None  # the catalog's limit for the model, for protocols that require one
    extra_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True, kw_only=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool = False
    provider_id: str = ""


@dataclasses.dataclass(slots=True, kw_only=True)
class UpstreamResponse:
    """An upstream answer. Exactly one of ``body`` (buffered) or ``chunks`` (streamed, success only) is set.

    ``close`` must be awaited once the caller is done with ``chunks`` (it returns the connection to the pool,
    or drops it when the stream was abandoned).
    """

    status: int
    headers: Mapping[str, str]
    body: bytes | None = None
    chunks: AsyncIterator[bytes] | None = None
    close: Any = None  # Callable[[], Awaitable[None]] | None

    async def aclose(self) -> None:
        if self.close is not None:
            await self.close()


@dataclasses.dataclass(slots=True)
class ParsedResponse:
    """A successful non-streamed answer, already in the canonical wire form, with its usage."""

    body: bytes
    usage: Usage
    response_model: str | None = None


class StreamTranslator(Protocol):
    """Turns upstream stream bytes into canonical SSE bytes, chunk by chunk, and collects usage on the way.

    Example::

        translator = adapter.stream(call)
        async for piece in upstream.chunks:
            for out in translator.feed(piece):
                await send(out)
        for out in translator.finish():
            await send(out)
        translator.usage  # final counts
    """

    usage: Usage

    def feed(self, data: bytes) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...


class Transport(Protocol):
    """Sends one upstream request. Raising is reserved for transport failures (see ``providers.errors``)."""

    async def send(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class NativePassthrough(Protocol):
    """An adapter whose wire is also a client dialect: a call in that dialect skips both translations.

    The client's own body goes upstream with only the model rewritten (Anthropic's thinking signatures and
    ``cache_control`` marks survive), and the answer comes back byte for byte; usage is read on the way.

    Example::

        if getattr(adapter, "native_dialect", None) == "anthropic":
            request = adapter.build_native_request(call, client_body, client_headers)
    """

    native_dialect: str

    def build_native_request(
        self, call: UpstreamCall, body: dict[str, Any], headers: Mapping[str, str]
    ) -> UpstreamRequest: ...

    def native_usage(self, body: bytes) -> Usage: ...

    def native_stream(self, call: UpstreamCall) -> StreamTranslator: ...


class TokenCounter(Protocol):
    """An adapter whose provider counts tokens exactly (Anthropic's ``count_tokens``)."""

    def build_count_request(
        self, call: UpstreamCall, body: dict[str, Any], headers: Mapping[str, str]
    ) -> UpstreamRequest: ...


class ProviderAdapter(Protocol):
    """Translates between the canonical (OpenAI Chat Completions) form and one provider wire protocol."""

    def build_request(self, call: UpstreamCall) -> UpstreamRequest: ...

    def parse_response(self, call: UpstreamCall, response: UpstreamResponse) -> ParsedResponse: ...

    def stream(self, call: UpstreamCall) -> StreamTranslator: ...

    def error_message(self, response: UpstreamResponse) -> str: ...
