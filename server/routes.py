"""HTTP routes: parse the minimum, hand the call to the pipeline, render the result in the caller's dialect."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from providers.ingress import IngressDialect, dialect
from providers.types import Endpoint

from . import admin, finance_routes, run_routes
from .call import Call
from .count_tokens import count_tokens
from .errors import GatewayError, NotFound
from .hot_routes import HotEndpoint
from .payments import routes as payments
from .responses import StreamResponse, error_response, openai_error_body, reply_response
from .routing.passthrough import PassthroughRoute, client_dialect
from .routing.routers import health_report
from .services import Services
from .stages import authenticate_request, model_allowed
from .stages.policy import principal_allows

__all__ = ["HOT_ROUTES", "http_exception", "routes"]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


_OPENAI = dialect("openai")
_ANTHROPIC = dialect("anthropic")


async def _governed(
    request: Request, endpoint: Endpoint, client_dialect: IngressDialect = _OPENAI
) -> Response | StreamResponse:
    call = Call(request=request, endpoint=endpoint, dialect=client_dialect)
    call.router_id = request.path_params.get("router_id")  # /router/{router_id}/v1/...
    try:
        reply = await request.app.state.pipeline(call)
    except GatewayError as exc:
        return error_response(call, exc)
    return reply_response(call, reply)


async def chat_completions(request: Request) -> Response | StreamResponse:
    return await _governed(request, "chat")


async def embeddings(request: Request) -> Response | StreamResponse:
    return await _governed(request, "embeddings")


async def messages(request: Request) -> Response | StreamResponse:
    return await _governed(request, "chat", _ANTHROPIC)


async def responses(request: Request) -> Response | StreamResponse:
    client_dialect = getattr(request.app.state, "responses_dialect", None)
    if client_dialect is None:
        client_dialect = request.app.state.responses_dialect = dialect("responses")
    return await _governed(request, "chat", client_dialect)


async def get_response(request: Request) -> Response:
    """``GET /v1/responses/{id}``: a stored Responses answer, only within the caller's workspace."""
    services = _services(request)
    call = Call(request=request, endpoint="chat", dialect=_OPENAI)
    try:
        principal = authenticate_request(services.keyring, request.headers.get("authorization"))
        response_id = request.path_params["response_id"]
        stored = await services.stored_responses.recall(response_id, workspace_id=principal.workspace_id)
        if stored is None:
            raise NotFound(
                f"No stored response '{response_id}' in this workspace (only requests without store: false are kept).",
                code="response_not_found",
            )
    except GatewayError as exc:
        return error_response(call, exc)
    return _json(stored.response)


async def root(request: Request) -> Response:
    """Some clients (Claude Code among them) probe ``HEAD /`` before they start."""
    return Response(b"", status_code=200)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _model_rows(request: Request) -> list[dict[str, Any]] | Response:
    services = _services(request)
    call = Call(request=request, endpoint="chat", dialect=_OPENAI)
    try:
        principal = authenticate_request(services.keyring, request.headers.get("authorization"))
    except GatewayError as exc:
        return error_response(call, exc)
    router_id = request.path_params.get("router_id")
    if router_id is not None:  # /router/{id}/v1/models: the router's model names this key may use
        try:
            router = services.routers.router(router_id)
        except GatewayError as exc:
            return error_response(call, exc)
        return [
            {"id": name, "object": "model", "created": 0, "owned_by": f"router:{router_id}"}
            for name, group in router.groups.items()
            if "/" not in name and any(model_allowed(principal.models, d.target.qualified) for d in group.deployments)
        ]
    rows = []
    agent = request.headers.get("alephant-agent-id")
    for entry in services.catalog.entries():
        qualified = f"{entry.provider.id}/{entry.model}"
        if principal_allows(services.keyring, principal, qualified, agent):
            rows.append({"id": qualified, "object": "model", "created": 0, "owned_by": entry.provider.id})
    for alias, target in services.settings.aliases.items():
        if principal_allows(services.keyring, principal, target, agent):
            rows.append({"id": alias, "object": "model", "created": 0, "owned_by": target.partition("/")[0]})
    return rows


async def list_models(request: Request) -> Response:
    rows = _model_rows(request)
    if isinstance(rows, Response):
        return rows
    return _json({"object": "list", "data": rows})


async def get_model(request: Request) -> Response:
    rows = _model_rows(request)
    if isinstance(rows, Response):
        return rows
    wanted = request.path_params["model"]
    for row in rows:
        if row["id"] == wanted:
            return _json(row)
    error = NotFound(f"The model '{wanted}' does not exist here; GET /v1/models lists them.", code="model_not_found")
    return Response(openai_error_body(error), status_code=404, media_type="application/json")


async def health_live(request: Request) -> Response:
    return _json({"status": "ok"})


async def health_ready(request: Request) -> Response:
    try:
        await _services(request).database.ping()
    except Exception as exc:
        return _json({"status": "unavailable", "store": type(exc).__name__}, status=503)
    return _json({"status": "ok", "store": _services(request).database.dialect})


async def health_providers(request: Request) -> Response:
    """Each deployment's circuit, cooldown, error ratio, latency and in-flight count (any valid key)."""
    services = _services(request)
    try:
        authenticate_request(services.keyring, request.headers.get("authorization"), request.headers.get("x-api-key"))
    except GatewayError as exc:
        return error_response(Call(request=request, endpoint="chat", dialect=_OPENAI), exc)
    return _json(health_report(services.routers, services.health))


async def provider_passthrough(request: Request) -> Response | StreamResponse:
    """``/{provider}/{path}``: the provider's own API, governed (see ``server.routing.passthrough``)."""
    services = _services(request)
    spec = services.catalog.provider(request.path_params["provider"])
    assert spec is not None  # PassthroughRoute matches catalog providers only
    call = Call(request=request, endpoint="chat", dialect=client_dialect(services, spec))
    call.passthrough = True
    try:
        reply = await request.app.state.passthrough(call)
    except GatewayError as exc:
        return error_response(call, exc)
    return reply_response(call, reply)


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers, in the OpenAI error format."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"No route for {request.method} {request.url.path}. See README 'Routes'."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    error = GatewayError(message, status=exc.status_code, code="not_found" if exc.status_code == 404 else None)
    error.type = "invalid_request_error"
    return Response(
        openai_error_body(error),
        status_code=exc.status_code,
        media_type="application/json",
        headers=dict(exc.headers or {}),
    )


_API: list[BaseRoute] = [
    Route("/chat/completions", chat_completions, methods=["POST"]),
    Route("/messages", messages, methods=["POST"]),
    Route("/messages/count_tokens", count_tokens, methods=["POST"]),
    Route("/responses", responses, methods=["POST"]),
    Route("/responses/{response_id}", get_response, methods=["GET"]),
    Route("/embeddings", embeddings, methods=["POST"]),
    Route("/models", list_models, methods=["GET"]),
    Route("/models/{model:path}", get_model, methods=["GET"]),
]

# The model routes without path parameters, which ``hot_routes.GatewayApp`` answers before the router.
HOT_ROUTES: dict[str, HotEndpoint] = {
    prefix + route.path: route.endpoint
    for prefix in ("/v1", "/ai")
    for route in _API
    if isinstance(route, Route) and route.methods == {"POST"} and not route.param_convertors
}

routes: list[BaseRoute] = [
    *run_routes.routes,  # before the /v1 mount, which would otherwise claim /v1/runs and /v1/logs
    *finance_routes.routes,  # /v1/spend, /v1/finance/*: before the /v1 mount too
    *payments.routes,  # /v1/payments/fetch, and paid endpoints (only their own paths match): before /v1 too
    Mount("/v1", routes=_API),
    Mount("/ai", routes=_API),
    Route("/", root, methods=["GET", "HEAD"]),
    Route("/health/live", health_live, methods=["GET"]),
    Route("/health/ready", health_ready, methods=["GET"]),
    Route("/health/providers", health_providers, methods=["GET"]),
    Mount("/router/{router_id}", routes=[Mount("/v1", routes=_API), Mount("/ai", routes=_API)]),
    *admin.routes,
    # Last, and matching only catalog provider ids: it never shadows the routes above or mounted ones.
    PassthroughRoute(
        "/{provider}/{path:path}", provider_passthrough, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
    ),
]
