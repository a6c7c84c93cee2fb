"""What every admin handler shares: who may call it, which workspace it acts on, bodies in, JSON and errors out.

Usage::

    @admin_endpoint
    async def create_agent(request: Request, admin: Admin) -> Response:
        body = await read_body(request, AgentIn)
        ...
        return json_response(agent, status=201)

The master key acts on any workspace (``?workspace_id=`` or the body's ``workspace_id``, ``default`` when
neither is given); a key with the ``admin`` scope acts on its own workspace only, and naming another one is a
403. Reads are always scoped to ``admin.workspace_id``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..call import Principal
from ..errors import GatewayError, InvalidRequest, PolicyDenied
from ..responses import openai_error_body
from ..stages import authenticate_request

if TYPE_CHECKING:  # services import the payments routes, which use this module
    from ..services import Services

__all__ = ["ADMIN_SCOPE", "Admin", "admin_endpoint", "json_response", "read_body", "services"]

ADMIN_SCOPE = "admin"
Model = TypeVar("Model", bound=BaseModel)


@dataclasses.dataclass(frozen=True, slots=True)
class Admin:
    """The authenticated administrator and the workspace this request acts on."""

    principal: Principal
    workspace_id: str


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=_default), status_code=status, media_type="application/json")


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


async def read_body(request: Request, model: type[Model]) -> Model:
    """The JSON body validated by ``model``; a 400 naming each bad field and what it expects otherwise."""
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        first = exc.errors(include_url=False)[0]["loc"] if exc.errors() else ()
        raise InvalidRequest(
            "Invalid request body: " + "; ".join(problems), param=".".join(str(p) for p in first) or None
        ) from None


def _authorize(request: Request) -> Admin:
    principal = authenticate_request(
        services(request).keyring, request.headers.get("authorization"), request.headers.get("x-api-key")
    )
    if not principal.is_master and ADMIN_SCOPE not in principal.scopes:
        raise PolicyDenied(
            "This API key may not use the admin API. Use the master key, or a key created with --scope admin."
        )
    wanted = request.query_params.get("workspace_id")
    if wanted is None:
        workspace_id = "default" if principal.is_master else principal.workspace_id
    elif principal.is_master or wanted == principal.workspace_id:
        workspace_id = wanted
    else:
        raise PolicyDenied(
            f"This admin key belongs to workspace '{principal.workspace_id}' and may not act on '{wanted}'.",
            param="workspace_id",
        )
    return Admin(principal=principal, workspace_id=workspace_id)


def admin_endpoint(
    handler: Callable[[Request, Admin], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, scope, run ``handler``, and render a ``GatewayError`` as an OpenAI-style error."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, _authorize(request))
        except GatewayError as exc:
            headers = dict(exc.headers)
            if exc.status == 401:
                headers["www-authenticate"] = 'Bearer realm="alephant"'
            return Response(
                openai_error_body(exc), status_code=exc.status, headers=headers, media_type="application/json"
            )

    return endpoint
