"""Model targets: a paid endpoint whose target is ``model:provider/model`` sells one governed model call.

The request body is a Chat Completions body (its ``model`` is the endpoint's, whatever the payer wrote; the
answer is buffered, never streamed, so that settlement can follow a successful answer). The call goes through
the gateway's own pipeline, like an MCP tool's, with one difference: the payer holds no key of ours, so the
authentication stage is replaced by a principal of the endpoint's workspace (key id ``paid:<endpoint id>``).
Its workspace policy, budgets and rate limits apply, and its request-log row and cost are the seller's.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from providers.ingress import dialect

from ..call import Call, Principal, Reply
from ..errors import InvalidRequest
from ..pipeline import Handler, build_pipeline
from ..services import Services
from ..stages import STAGES, dispatch
from ..stages.authenticate import AuthenticateStage

__all__ = ["model_body", "model_pipeline", "run_model"]

_OPENAI = dialect("openai")
_FORWARDED = ("alephant-agent-id", "alephant-run-id", "alephant-session-id", "alephant-request-id")


class _SellerPrincipal:
    """Stands in for ``AuthenticateStage``: the call's principal was set by the paid endpoint, not a key."""

    def __init__(self, next: Handler, services: Services) -> None:
        self.next = next

    async def __call__(self, call: Call) -> Reply:
        assert call.principal is not None, "run_model sets the seller's principal"
        return await self.next(call)


def model_pipeline(services: Services) -> Handler:
    """The governed pipeline, authenticated by the paid endpoint instead of a bearer key."""
    stages = [_SellerPrincipal if stage is AuthenticateStage else stage for stage in STAGES]
    return build_pipeline(stages, dispatch, services)


def model_body(raw: bytes, model: str) -> bytes:
    """The payer's Chat Completions body with the endpoint's model, unstreamed; ``InvalidRequest`` if unusable."""
    try:
        body: Any = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            'The body is not JSON; send a Chat Completions body such as {"messages": [...]}.'
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise InvalidRequest(
            "This paid endpoint sells a model call: send a Chat Completions body with a non-empty 'messages' list.",
            param="messages",
        )
    return orjson.dumps({**body, "model": model, "stream": False})


async def run_model(
    pipeline: Handler, request: Request, *, endpoint_id: str, workspace_id: str, body: bytes
) -> tuple[Call, Reply]:
    """One model call for the paid ``request``, as the endpoint's workspace; raises ``GatewayError`` on refusal."""
    headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    call = Call.internal(headers=headers, body=body, endpoint="chat", dialect=_OPENAI, path=request.url.path)
    call.principal = Principal(key_id=f"paid:{endpoint_id}", workspace_id=workspace_id)
    return call, await pipeline(call)
