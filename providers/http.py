"""The HTTP transport: aiohttp, one pooled keep-alive session per event loop.

aiohttp measured ~11x httpx's throughput as a proxy client on this project's machines (DESIGN.md), so it is the
upstream client. Every aiohttp exception is mapped to ``TransportError``/``TransportTimeout`` here and nowhere
else; the gateway never sees an aiohttp type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from .errors import TransportError, TransportTimeout
from .types import UpstreamRequest, UpstreamResponse

__all__ = ["AiohttpTransport"]


class AiohttpTransport:
    """``Transport`` over aiohttp. Create it inside the running loop (the app's lifespan)."""

    def __init__(self, *, connect_timeout: float, stream_idle_timeout: float, pool_size: int) -> None:
        self._connect_timeout = connect_timeout
        self._stream_idle_timeout = stream_idle_timeout
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size, ttl_dns_cache=300, enable_cleanup_closed=True),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def aclose(self) -> None:
        await self._session.close()

    async def send(self, request: UpstreamRequest, *, timeout: float) -> UpstreamResponse:
        provider = request.provider_id
        if request.stream:
            client_timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self._connect_timeout, sock_read=self._stream_idle_timeout
            )
        else:
            client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=self._connect_timeout)
        try:
            response = await self._session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=client_timeout,
            )
        except TimeoutError as exc:
            raise TransportTimeout(f"{provider} did not answer within {timeout:g}s", provider=provider) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"cannot reach {provider}: {_describe(exc)}", provider=provider) from exc
        headers = {k.lower(): v for k, v in response.headers.items()}
        if not request.stream or response.status >= 400:
            try:
                body = await response.read()
            except TimeoutError as exc:
                response.close()
                raise TransportTimeout(f"{provider} did not answer within {timeout:g}s", provider=provider) from exc
            except aiohttp.ClientError as exc:
                response.close()
                raise TransportError(f"{provider} closed the connection: {_describe(exc)}", provider=provider) from exc
            finally:
                response.release()
            return UpstreamResponse(status=response.status, headers=headers, body=body)

        async def close() -> None:
            # A stream read to its end goes back to the pool; an abandoned one must not be reused.
            if response.content.at_eof():
                response.release()
            else:
                response.close()

        return UpstreamResponse(
            status=response.status, headers=headers, chunks=self._relay(response, provider), close=close
        )

    async def _relay(self, response: aiohttp.ClientResponse, provider: str) -> AsyncIterator[bytes]:
        try:
            async for data in response.content.iter_any():
                yield data
        except TimeoutError as exc:
            raise TransportTimeout(
                f"{provider} sent nothing for {self._stream_idle_timeout:g}s mid-stream", provider=provider
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{provider} broke the stream: {_describe(exc)}", provider=provider) from exc


def _describe(exc: BaseException) -> str:
    # aiohttp messages can embed the full URL; upstream URLs carry no secrets here (keys go in headers).
    return str(exc) or type(exc).__name__
