"""``POST /v1/messages/count_tokens``: exact from the provider when it counts, otherwise an estimate.

An upstream that speaks Anthropic Messages natively counts exactly (its own ``count_tokens`` endpoint, given
the client's body); anything else gets an estimate of about 4 characters a token. The
``alephant-token-count`` response header says which (``exact`` or ``estimate``).
"""

from __future__ import annotations

from typing import cast

import orjson
from starlette.requests import Request
from starlette.responses import Response

from providers.errors import TransportError
from providers.ingress import DialectError, dialect
from providers.ingress.anthropic import ingest_messages
from providers.types import TokenCounter, UpstreamCall

from .call import Call
from .errors import GatewayError, InvalidRequest, ModelNotFound, PolicyDenied
from .responses import error_response
from .services import Services
from .stages import authenticate_request, model_allowed
from .stages.dispatch import status_error
from .stages.ingress import parse_json, read_body

__all__ = ["count_tokens"]

_ANTHROPIC = dialect("anthropic")


def _estimate(body: dict[str, object]) -> int:
    messages = body.get("messages") or []
    text = orjson.dumps([messages, body.get("tools")])
    return len(text) // 4 + 3 * len(messages if isinstance(messages, list) else ())


async def count_tokens(request: Request) -> Response:
    services: Services = request.app.state.services
    call = Call(request=request, endpoint="chat", dialect=_ANTHROPIC)
    headers = {"alephant-request-id": call.request_id}
    try:
        principal = authenticate_request(
            services.keyring, request.headers.get("authorization"), request.headers.get("x-api-key")
        )
        try:
            data = parse_json(await read_body(call, services.settings.max_body_bytes))
            ingested = ingest_messages(data, require_max_tokens=False)
        except DialectError as exc:
            raise InvalidRequest(exc.message, param=exc.param) from None
        try:
            target = services.catalog.resolve(ingested.model)
        except LookupError:
            raise ModelNotFound(
                f"The model '{ingested.model}' does not exist here; GET /v1/models lists them.", param="model"
            ) from None
        if not model_allowed(principal.models, target.qualified):
            raise PolicyDenied(f"This API key may not use model '{target.qualified}'.", param="model")
        spec = target.provider
        adapter = services.upstreams.adapter(spec) if spec.available else None
        if adapter is not None and hasattr(adapter, "build_count_request"):
            upstream = UpstreamCall(endpoint="chat", provider=spec, model=target.model, body=ingested.body, raw=b"")
            counted = cast(TokenCounter, adapter).build_count_request(upstream, data, request.headers)
            try:
                response = await services.upstreams.transport(spec).send(counted, timeout=30)
            except TransportError:
                response = None  # the provider is unreachable: an estimate is better than nothing
            if response is not None:
                if response.status >= 400:
                    raise status_error(adapter, spec.id, response)
                return Response(
                    response.body or b"{}",
                    media_type="application/json",
                    headers={**headers, "alephant-token-count": "exact"},
                )
    except GatewayError as exc:
        return error_response(call, exc)
    return Response(
        orjson.dumps({"input_tokens": _estimate(ingested.body)}),
        media_type="application/json",
        headers={**headers, "alephant-token-count": "estimate"},
    )
