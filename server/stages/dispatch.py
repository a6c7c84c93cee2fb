"""The terminal handler: provider adapter, transport, upstream error mapping, and the egress stream.

Transport exceptions and upstream error statuses become gateway errors here and nowhere else. Upstream 4xx
keep their status and message (the client's request was at fault); 5xx become 502 naming the provider;
refused connections 502 and timeouts 504. The dispatcher only sends: ``_send`` makes one attempt at one
deployment, and the attempt loop (``server.routing.attempts``, fed by ``server.routing.health``) decides
whether there is another. A stream's first upstream chunk is read before the reply is returned, so a stream
that breaks before any byte reached the client can still be retried; after that it is the client's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

import anyio
import orjson

from providers.errors import TransportError, TransportTimeout
from providers.types import (
    NativePassthrough,
    ProviderAdapter,
    ProviderSpec,
    StreamTranslator,
    UpstreamCall,
    UpstreamResponse,
    Usage,
)

from ..call import Call, Reply
from ..errors import (
    GatewayError,
    InvalidRequest,
    ProviderNotConfigured,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from ..pipeline import Handler
from ..routing.attempts import AttemptError, AttemptLoop, retry_after
from ..routing.routers import no_fallback
from ..routing.types import Deployment, Plan
from ..services import Services

__all__ = ["dispatch", "status_error", "transport_error"]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_KEPT_UPSTREAM_HEADERS = ("retry-after", "retry-after-ms")


def _not_configured(spec: ProviderSpec) -> str:
    if not spec.base_url:
        return f"Provider '{spec.id}' has no base URL. Set providers.{spec.id}.base_url in alephant.yaml."
    if spec.requires_key:
        return f"Provider '{spec.id}' has no API key. Set {spec.api_key_env} in the gateway's environment."
    return (
        f"Provider '{spec.id}' is a local server that is not enabled. List it under providers.{spec.id} in "
        "alephant.yaml (with its base_url)."
    )


def transport_error(exc: TransportError) -> UpstreamError:
    if isinstance(exc, TransportTimeout):
        return UpstreamTimeout(f"Provider '{exc.provider}' timed out: {exc}", provider=exc.provider)
    return UpstreamUnavailable(f"Provider '{exc.provider}' is unreachable: {exc}", provider=exc.provider)


def status_error(adapter: ProviderAdapter, provider: str, response: UpstreamResponse) -> UpstreamError:
    message = adapter.error_message(response)
    headers = {name: response.headers[name] for name in _KEPT_UPSTREAM_HEADERS if name in response.headers}
    code: str | None = None
    kind: str | None = None
    try:
        error = orjson.loads(response.body or b"{}").get("error")
        if isinstance(error, dict):
            code = error["code"] if isinstance(error.get("code"), str) else None
            kind = error["type"] if isinstance(error.get("type"), str) else None
    except (orjson.JSONDecodeError, AttributeError):
        pass
    if 400 <= response.status < 500:
        refused = UpstreamError(message, provider=provider, status=response.status, code=code, headers=headers)
        refused.type = kind or "invalid_request_error"
        return refused
    return UpstreamError(
        f"Provider '{provider}' failed with HTTP {response.status}: {message}",
        provider=provider,
        status=502,
        headers=headers,
    )


def _error_event(error: GatewayError) -> bytes:
    body = {"error": {"message": error.message, "type": error.type, "param": None, "code": error.code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def _after(first: bytes | None, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first is not None:
        yield first
    async for data in chunks:
        yield data


class _Dispatch:
    def __init__(self, services: Services) -> None:
        self.upstreams = services.upstreams
        self.catalog = services.catalog
        self.routers = services.routers
        self.timeout = services.settings.upstream.timeout
        self.retries = services.settings.retries
        self.keyring = services.keyring
        self.attempts = AttemptLoop(
            health=services.health, settings=services.settings.retries, timeout=self.timeout, rng=services.rng
        )

    async def __call__(self, call: Call) -> Reply:
        assert call.target is not None
        plan = call.plan
        if plan is None:  # a pipeline without the route stage: the resolved target, once
            plan = Plan(
                group=self.routers.direct(call.target),
                fallback=no_fallback,
                allowed=lambda deployment: True,
                max_attempts=1,
                deadline=time.monotonic() + self.timeout,
                deadline_ms=int(self.timeout * 1000),
            )
        return await self.attempts.run(call, plan, self._send)

    async def _send(self, call: Call, deployment: Deployment, spec: ProviderSpec, timeout: float) -> Reply:
        """One attempt at one deployment; ``AttemptError`` when it failed before anything reached the client."""
        model = deployment.target.model
        if call.principal is not None:  # the workspace's own provider key, when it has one, over the environment's
            own = self.keyring.governance.provider_key(call.principal.workspace_id, spec.id)
            spec = spec if own is None else spec.with_key(own)
        if not spec.available:
            raise ProviderNotConfigured(_not_configured(spec), param="model")
        adapter = self.upstreams.adapter(spec)
        info = self.catalog.model_info(spec.id, model)
        upstream = UpstreamCall(
            endpoint=call.endpoint,
            provider=spec,
            model=model,
            body=dict(call.body),  # adapters rewrite top-level fields; the next attempt needs the original
            raw=b"" if call.translated else call.raw,
            stream=call.stream,
            client_wants_usage=call.client_wants_usage,
            max_output_tokens=info.max_output_tokens if info else None,
        )
        native = call.client_body is not None and getattr(adapter, "native_dialect", None) == call.dialect.name
        try:
            if native:
                passthrough = cast(NativePassthrough, adapter)
                request = passthrough.build_native_request(upstream, call.client_body or {}, call.request.headers)
            else:
                request = adapter.build_request(upstream)
        except ValueError as exc:  # the provider's protocol cannot express this request
            raise InvalidRequest(f"Provider '{spec.id}' cannot serve this request: {exc}") from None
        try:
            if call.stream:
                # A stream's total time is not bounded by the transport (only its idle gaps are): the attempt's
                # share of the deadline bounds the wait for its first chunk here.
                async with asyncio.timeout(timeout):
                    response = await self.upstreams.transport(spec).send(request, timeout=timeout)
                    if response.status < 400 and response.chunks is not None:
                        response.chunks = await self._first_chunk(spec, response)
            else:
                response = await self.upstreams.transport(spec).send(request, timeout=timeout)
        except TimeoutError:
            raise AttemptError(
                UpstreamTimeout(f"Provider '{spec.id}' timed out: no answer within {timeout:g}s", provider=spec.id)
            ) from None
        except TransportError as exc:
            raise AttemptError(transport_error(exc)) from None
        if response.status >= 400:
            raise AttemptError(
                status_error(adapter, spec.id, response),
                upstream_status=response.status,
                retry_after=retry_after(response.headers),
            )
        call.target = deployment.target
        call.native = native
        if native:
            return self._native_reply(call, cast(NativePassthrough, adapter), upstream, response)
        if response.chunks is None:
            try:
                parsed = adapter.parse_response(upstream, response)
            except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
                raise UpstreamError(
                    f"Provider '{spec.id}' sent an answer the gateway cannot read: {type(exc).__name__}",
                    provider=spec.id,
                ) from None
            call.usage = parsed.usage
            return Reply(status=response.status, body=parsed.body)
        return Reply(
            status=response.status,
            headers=dict(_SSE_HEADERS),
            stream=self._relay(call, response, adapter.stream(upstream)),
            media_type="text/event-stream",
        )

    @staticmethod
    async def _first_chunk(spec: ProviderSpec, response: UpstreamResponse) -> AsyncIterator[bytes]:
        """Wait for the stream's first bytes (a reset before them is retryable); the stream resumes with them."""
        assert response.chunks is not None
        chunks = response.chunks
        try:
            first: bytes | None = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except BaseException:
            await response.aclose()
            raise
        return _after(first, chunks)

    def _native_reply(
        self, call: Call, adapter: NativePassthrough, upstream: UpstreamCall, response: UpstreamResponse
    ) -> Reply:
        if response.chunks is None:
            try:
                call.usage = adapter.native_usage(response.body or b"")
            except (ValueError, KeyError, TypeError):
                call.usage = Usage()  # relayed as received; the client reads its own dialect
            return Reply(status=response.status, body=response.body or b"", media_type=call.dialect.media_type)
        return Reply(
            status=response.status,
            headers=dict(_SSE_HEADERS),
            stream=self._relay(call, response, adapter.native_stream(upstream)),
            media_type="text/event-stream",
        )

    async def _relay(
        self, call: Call, response: UpstreamResponse, translator: StreamTranslator
    ) -> AsyncIterator[bytes]:
        assert response.chunks is not None
        events = 0
        try:
            # What one upstream read produced goes to the client as one chunk (one socket write, not one per
            # event): the upstream's own batching is kept, and nothing waits for more.
            async for data in response.chunks:
                out = translator.feed(data)
                if out:
                    events += len(out)
                    yield out[0] if len(out) == 1 else b"".join(out)
            out = translator.finish()
            if out:
                yield b"".join(out)
        except TransportError as exc:
            call.status = "error"
            call.error = transport_error(exc)
            yield _error_event(call.error)
        except (ValueError, KeyError, TypeError) as exc:  # a stream the adapter cannot read
            call.status = "error"
            call.error = UpstreamError(
                f"Provider '{call.target.provider.id if call.target else '?'}' sent a stream the gateway cannot "
                f"read: {type(exc).__name__}",
                provider=call.target.provider.id if call.target else "",
            )
            yield _error_event(call.error)
        finally:
            usage = translator.usage
            if usage.prompt_tokens == 0 and usage.completion_tokens == 0 and events:
                # The stream ended before the upstream's usage chunk (client disconnect, cut stream):
                # one content event is about one token; the prompt is estimated at ~4 bytes a token.
                usage = Usage(prompt_tokens=len(call.raw) // 4, completion_tokens=max(0, events - 1))
            call.usage = usage
            with anyio.CancelScope(shield=True):  # a disconnect cancels the relay; the connection is still released
                await response.aclose()


def dispatch(services: Services) -> Handler:
    return _Dispatch(services)
