"""Adapters and transports by name: the only place a provider row's ``adapter``/``transport`` is interpreted.

A new wire protocol is one adapter module plus one line here; an OpenAI-compatible provider is a catalog row.
"""

from __future__ import annotations

from .http import AiohttpTransport
from .mock import MockTransport
from .openai import OpenAIAdapter
from .types import ProviderAdapter, ProviderSpec, Transport

__all__ = ["Upstreams"]

_ADAPTERS: dict[str, ProviderAdapter] = {"openai": OpenAIAdapter()}


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
        self._transports: dict[str, Transport] = {
            "http": AiohttpTransport(
                connect_timeout=connect_timeout, stream_idle_timeout=stream_idle_timeout, pool_size=pool_size
            ),
            "mock": MockTransport(latency_ms=mock_latency_ms, chunk_delay_ms=mock_chunk_delay_ms),
        }

    def adapter(self, spec: ProviderSpec) -> ProviderAdapter:
        try:
            return _ADAPTERS[spec.adapter]
        except KeyError:
            raise LookupError(f"provider {spec.id!r} names adapter {spec.adapter!r}, which does not exist") from None

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
