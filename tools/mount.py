"""The MCP server mounted in the gateway at ``/mcp`` (the ``alephant.mounts`` entry ``mcp``).

Streamable HTTP, stateless, JSON responses: each POST is answered on its own, so both protocol eras share the
endpoint (the 2025-11-25 ``initialize`` handshake and the 2026-07-28 per-request envelope) and any replica can
answer any request. In front of the SDK's transport, one guard per request:

1. Host and Origin are checked against the bind address (DNS-rebinding protection): bound to a loopback or a
   specific address, only that address and the loopback names pass; bound to every interface the gateway
   cannot know the names it is reached by, so the check is left to the proxy in front (a key is needed anyway).
2. The virtual key (``Authorization: Bearer``) must be valid; otherwise 401 with ``WWW-Authenticate`` pointing
   at the Protected Resource Metadata (RFC 9728), served at ``/.well-known/oauth-protected-resource/mcp``
   (and at the root variant, which some clients try first).

What the key may do is decided again, per tool call, by the pipeline itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import orjson
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.app import Mounted
from server.config import Settings
from server.errors import GatewayError
from server.services import Services
from server.stages import authenticate_request

from .mcp_server import GatewayContext, build_server

__all__ = ["MCP_PATH", "PRM_PATH", "mount", "transport_security"]

MCP_PATH = "/mcp"
PRM_PATH = "/.well-known/oauth-protected-resource" + MCP_PATH
_PRM_ROOT = "/.well-known/oauth-protected-resource"
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_EVERY_INTERFACE = ("0.0.0.0", "::", "")


def transport_security(bind_host: str) -> TransportSecuritySettings:
    """Host/Origin validation for a gateway bound to ``bind_host``."""
    if bind_host in _EVERY_INTERFACE:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    host = f"[{bind_host}]" if ":" in bind_host and not bind_host.startswith("[") else bind_host
    names = dict.fromkeys((*_LOOPBACK, host))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[pattern for name in names for pattern in (name, f"{name}:*")],
        allowed_origins=[
            pattern
            for name in names
            for scheme in ("http", "https")
            for pattern in (f"{scheme}://{name}", f"{scheme}://{name}:*")
        ],
    )


def _resource_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + MCP_PATH


def _metadata_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PRM_PATH


async def protected_resource_metadata(request: Request) -> Response:
    """RFC 9728 metadata. No ``authorization_servers``: keys are issued by ``alephant keys create``, not OAuth."""
    document = {
        "resource": _resource_url(request),
        "resource_name": "Alephant gateway (MCP)",
        "bearer_methods_supported": ["header"],
    }
    return Response(
        orjson.dumps(document),
        media_type="application/json",
        headers={"cache-control": "public, max-age=3600", "access-control-allow-origin": "*"},
    )


class _Guard:
    """Host/Origin, then the key; then the SDK's transport."""

    def __init__(self, manager: StreamableHTTPSessionManager, security: TransportSecuritySettings) -> None:
        self.manager = manager
        self.security = TransportSecurityMiddleware(security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refused = await self.security.validate_request(request)
        if refused is None:
            refused = self._authenticate(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)

    @staticmethod
    def _authenticate(request: Request) -> Response | None:
        services: Services = request.app.state.services
        authorization = request.headers.get("authorization")
        try:
            authenticate_request(services.keyring, authorization)
        except GatewayError as exc:
            challenge = f'Bearer realm="alephant", resource_metadata="{_metadata_url(request)}"'
            if authorization:  # RFC 6750 §3.1: no error code when no credentials were sent
                description = exc.message.replace('"', "'")
                challenge += f', error="invalid_token", error_description="{description}"'
            body = {"error": "invalid_token", "error_description": exc.message, "code": exc.code}
            return Response(
                orjson.dumps(body),
                status_code=401,
                media_type="application/json",
                headers={"www-authenticate": challenge},
            )
        return None


class _McpMount:
    """The MCP server and its transport, given the gateway's services when the gateway's lifespan starts."""

    def __init__(self, settings: Settings) -> None:
        self._context: GatewayContext | None = None
        self.server = build_server(self._server_lifespan)
        security = transport_security(settings.host)
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            transport_security=security,
            max_request_body_size=settings.max_body_bytes,
        )
        guard = _Guard(self.server.session_manager, security)
        self.routes = [
            Route(MCP_PATH, guard),
            Route(PRM_PATH, protected_resource_metadata, methods=["GET"]),
            Route(_PRM_ROOT, protected_resource_metadata, methods=["GET"]),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._context = GatewayContext(services=app.state.services, pipeline=app.state.pipeline)
        async with self.server.session_manager.run():
            yield

    @contextlib.asynccontextmanager
    async def _server_lifespan(self, server: MCPServer[GatewayContext]) -> AsyncIterator[GatewayContext]:
        assert self._context is not None, "the session manager runs inside the gateway's lifespan"
        yield self._context


def mount(settings: Settings) -> Mounted:
    """The ``alephant.mounts`` entry: ``/mcp``, its metadata routes, and the session manager's lifespan."""
    made = _McpMount(settings)
    return Mounted(routes=made.routes, lifespan=made.lifespan)
