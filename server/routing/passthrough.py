"""Direct provider passthrough: ``/{provider}/{path}`` is the provider's own API behind the gateway's key.

The client authenticates with its gateway key (``Authorization: Bearer`` or ``x-api-key``); that credential is
dropped and the provider's key goes upstream in the provider's own auth style (``providers.registry``). The
body and the answer are relayed as they are, streams included. The call is still governed: agent context,
the model policy of every layer (``provider/model`` when the body names a model, else ``provider/*``), one
log row, and a cost when the answer carries usage the provider's adapter can read (OpenAI and Anthropic shapes).

``PassthroughRoute`` only matches a first path segment that is a provider of the catalog, so it never shadows
``/v1``, ``/ai``, ``/router``, ``/health``, ``/mcp`` or ``/.well-known`` however the routes are ordered.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.routing import Match, Route
from starlette.types import Scope

from providers.catalog import Resolved
from providers.errors import TransportError
from providers.ingress import IngressDialect, dialect
from providers.registry import CREDENTIAL_HEADERS, auth_headers
from providers.types import ProviderAdapter, ProviderSpec, StreamTranslator, UpstreamCall, UpstreamRequest, Usage

from ..call import Call, PolicyEvent, Reply
from ..errors import InvalidRequest, PolicyDenied, ProviderNotConfigured
from ..governance.policy import decide
from ..pipeline import Handler
from ..services import Services
from ..stages.dispatch import transport_error
from ..stages.ingress import read_body
from ..stages.policy import call_agent

__all__ = ["PassthroughRoute", "client_dialect", "passthrough"]

# Hop-by-hop and framing headers are the transport's; the client's gateway credential never goes upstream.
_DROPPED_REQUEST = (
    frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "cookie"})
    | CREDENTIAL_HEADERS
)
_DROPPED_RESPONSE = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "keep-alive", "content-type"}
)


class PassthroughRoute(Route):
    """A route whose first segment must name a catalog provider; anything else is left to the other routes."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.NONE:
            return match, child
        services = getattr(scope["app"].state, "services", None)
        if services is None or services.catalog.provider(child["path_params"]["provider"]) is None:
            return Match.NONE, {}
        return match, child


def client_dialect(services: Services, spec: ProviderSpec) -> IngressDialect:
    """Errors of a passthrough call are rendered in the provider's own dialect where the gateway speaks it."""
    native: str | None = getattr(services.upstreams.adapter(spec), "native_dialect", None)
    return dialect(native or "openai")


def upstream_url(base_url: str, path: str, query: str) -> str:
    """``base_url`` joined with the client's path, the overlap of the two counted once.

    ``https://api.openai.com/v1`` + ``v1/files`` is ``https://api.openai.com/v1/files``; a proxy at
    ``https://proxy/openai/v1`` + ``v1/files`` is ``https://proxy/openai/v1/files``.
    """
    parts = urlsplit(base_url)
    base_path = parts.path.rstrip("/")
    wanted = "/" + path.lstrip("/")
    segments = base_path.split("/")
    prefix = base_path
    for cut in range(1, len(segments)):
        suffix = "/".join(segments[cut:])
        if wanted == "/" + suffix or wanted.startswith("/" + suffix + "/"):
            prefix = "/".join(segments[:cut])
            break
    url = f"{parts.scheme}://{parts.netloc}{prefix}{wanted}"
    return f"{url}?{query}" if query else url


def _usage_reader(adapter: ProviderAdapter, upstream: UpstreamCall) -> StreamTranslator:
    native = getattr(adapter, "native_stream", None)
    translator: StreamTranslator = native(upstream) if native is not None else adapter.stream(upstream)
    return translator


class _Passthrough:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.catalog = services.catalog
        self.upstreams = services.upstreams
        self.limit = services.settings.max_body_bytes
        self.timeout = services.settings.upstream.timeout

    async def __call__(self, call: Call) -> Reply:
        assert call.principal is not None
        request = call.request
        spec = self.catalog.provider(request.path_params["provider"])
        assert spec is not None  # PassthroughRoute only matches catalog providers
        governance = self.services.keyring.governance
        own = governance.provider_key(call.principal.workspace_id, spec.id)  # the workspace's own key wins
        spec = spec if own is None else spec.with_key(own)
        if not spec.available:
            raise ProviderNotConfigured(f"Provider '{spec.id}' is not configured here (no key or no base URL).")
        try:
            credentials = auth_headers(spec, spec.api_key)
        except LookupError:
            raise InvalidRequest(
                f"Provider '{spec.id}' has no direct passthrough (its requests are signed); use /v1 instead."
            ) from None
        call.raw = await read_body(call, self.limit)
        data: Any = None
        if call.raw.lstrip()[:1] == b"{":
            try:
                data = orjson.loads(call.raw)
            except orjson.JSONDecodeError:
                data = None
        model = data.get("model") if isinstance(data, dict) and isinstance(data.get("model"), str) else None
        call.model = model
        call.stream = (isinstance(data, dict) and data.get("stream") is True) or (
            "text/event-stream" in request.headers.get("accept", "")
        )
        call.target = Resolved(spec, model or "")
        qualified = f"{spec.id}/{model}" if model else f"{spec.id}/*"
        agent = call_agent(governance, call.principal, call.context.agent_id)
        verdict = decide(governance.layers(call.principal, agent), qualified)
        call.policy_events.append(PolicyEvent("allow" if verdict.allowed else "deny", verdict.rule, verdict.reason))
        if not verdict.allowed:
            raise PolicyDenied(
                f"Policy rule {verdict.rule} denies '{qualified}' through the passthrough: {verdict.reason}.",
                param="model" if model else None,
            )
        headers = {k: v for k, v in request.headers.items() if k not in _DROPPED_REQUEST}
        headers = {k: v for k, v in headers.items() if not k.startswith("alephant-")}
        headers.update(credentials)
        upstream_request = UpstreamRequest(
            method=request.method,
            url=upstream_url(spec.base_url, request.path_params["path"], request.url.query),
            headers=headers,
            body=call.raw,
            stream=call.stream,
            provider_id=spec.id,
        )
        try:
            response = await self.upstreams.transport(spec).send(upstream_request, timeout=self.timeout)
        except TransportError as exc:
            raise transport_error(exc) from None
        if response.status >= 400:
            call.status = "error"
        relayed = {k: v for k, v in response.headers.items() if k not in _DROPPED_RESPONSE}
        media_type = response.headers.get("content-type", "application/octet-stream")
        adapter = self.upstreams.adapter(spec)
        upstream = UpstreamCall(
            endpoint="chat",
            provider=spec,
            model=model or "",
            body=data if isinstance(data, dict) else {},
            raw=call.raw,
            stream=call.stream,
            client_wants_usage=True,
        )
        if response.chunks is None:
            body = response.body or b""
            if response.status < 400 and b'"usage"' in body:
                call.usage = self._usage(adapter, upstream, response_body=body, response=response)
            return Reply(status=response.status, headers=relayed, body=body, media_type=media_type)
        return Reply(
            status=response.status,
            headers=relayed,
            stream=self._relay(call, response.chunks, response.aclose, _usage_reader(adapter, upstream)),
            media_type=media_type,
        )

    @staticmethod
    def _usage(adapter: ProviderAdapter, upstream: UpstreamCall, *, response_body: bytes, response: Any) -> Usage:
        try:
            native = getattr(adapter, "native_usage", None)
            if native is not None:
                usage: Usage = native(response_body)
                return usage
            return adapter.parse_response(upstream, response).usage
        except (ValueError, KeyError, TypeError, AttributeError):  # not an answer the adapter knows: no cost
            return Usage()

    @staticmethod
    async def _relay(
        call: Call, chunks: AsyncIterator[bytes], close: Any, tap: StreamTranslator | None
    ) -> AsyncIterator[bytes]:
        # Bytes go to the client exactly as received; the adapter reads a copy for usage and its output is unused.
        try:
            async for data in chunks:
                if tap is not None:
                    try:
                        tap.feed(data)
                    except (ValueError, KeyError, TypeError):
                        tap = None
                yield data
        except TransportError as exc:
            call.status, call.error = "error", transport_error(exc)
        finally:
            if tap is not None:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    tap.finish()
                call.usage = tap.usage
            await close()


def passthrough(services: Services) -> Handler:
    return _Passthrough(services)
