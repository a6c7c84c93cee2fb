"""Adapters and transports by name: the only place a provider row's ``adapter``/``transport`` is interpreted.

A new wire protocol is one adapter module plus one line in ``ADAPTERS``; an OpenAI-compatible provider is a
catalog row. Adapter modules are imported on first use, so a gateway that never calls Bedrock never imports
botocore.
"""

from __future__ import annotations

import importlib

from .http1 import Http1Transport
from .mock import MockTransport
from .types import ProviderAdapter, ProviderSpec, Transport

__all__ = ["ADAPTERS", "AUTH_HEADERS", "CREDENTIAL_HEADERS", "Upstreams", "auth_headers", "load_adapter"]

ADAPTERS: dict[str, str] = {
    "openai": "providers.openai:OpenAIAdapter",
    "azure": "providers.azure:AzureAdapter",
    "anthropic": "providers.anthropic:AnthropicAdapter",
    "gemini": "providers.gemini:GeminiAdapter",
    "bedrock": "providers.bedrock:BedrockAdapter",
    "ollama": "providers.ollama:OllamaAdapter",
    "cohere": "providers.cohere:CohereAdapter",
}


# How each wire protocol carries its key, for direct passthrough (``/{provider}/...``): header name and value
# template. Bedrock signs every request (SigV4) and so has no passthrough; it is absent on purpose.
AUTH_HEADERS: dict[str, tuple[str, str]] = {
    "openai": ("authorization", "Bearer {key}"),
    "azure": ("api-key", "{key}"),
    "anthropic": ("x-api-key", "{key}"),
    "gemini": ("x-goog-api-key", "{key}"),
    "ollama": ("authorization", "Bearer {key}"),
    "cohere": ("authorization", "Bearer {key}"),
}

# Every header a client could carry its (gateway) key in: stripped before a passthrough request goes upstream.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})


def auth_headers(spec: ProviderSpec, key: str | None) -> dict[str, str]:
    """The provider's own auth header(s) for ``key``; ``LookupError`` when its protocol cannot be passed through.

    Example::

        headers = {**client_headers_without_credentials, **auth_headers(spec, spec.api_key)}
    """
    style = AUTH_HEADERS.get(spec.adapter)
    if style is None:
        raise LookupError(f"provider {spec.id!r} ({spec.adapter}) has no direct passthrough")
    if not key:
        return {}
    name, template = style
    if spec.adapter == "azure" and spec.options.get("auth", "api-key").lower() == "bearer":
        name, template = "authorization", "Bearer {key}"
    return {name: template.format(key=key)}


def load_adapter(name: str) -> ProviderAdapter:
    try:
        module_name, _, class_name = ADAPTERS[name].partition(":")
    except KeyError:
        raise LookupError(f"adapter {name!r} does not exist; known: {', '.join(sorted(ADAPTERS))}") from None
    adapter: ProviderAdapter = getattr(importlib.import_module(module_name), class_name)()
    return adapter


class Upstreams:
    """The adapters and the live transports of one gateway process. Create inside the running loop."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        stream_idle_timeout: float,
        pool_size: int,
        mock_latency_ms: float = 0.0,
        mock_chunk_delay_ms: float = 0.0,
    ) -> None:
        self._adapters: dict[str, ProviderAdapter] = {}
        self._transports: dict[str, Transport] = {
            "http": Http1Transport(
                connect_timeout=connect_timeout, stream_idle_timeout=stream_idle_timeout, pool_size=pool_size
            ),
            "mock": MockTransport(latency_ms=mock_latency_ms, chunk_delay_ms=mock_chunk_delay_ms),
        }

    def adapter(self, spec: ProviderSpec) -> ProviderAdapter:
        adapter = self._adapters.get(spec.adapter)
        if adapter is None:
            adapter = self._adapters[spec.adapter] = load_adapter(spec.adapter)
        return adapter

    def transport(self, spec: ProviderSpec) -> Transport:
        try:
            return self._transports[spec.transport]
        except KeyError:
            raise LookupError(
                f"provider {spec.id!r} names transport {spec.transport!r}, which does not exist"
            ) from None

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()
