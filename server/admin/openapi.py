"""Admin operations declared once, as data: each becomes a route and an entry of ``/admin/openapi.json``.

An ``Operation`` names its method, path, handler and the pydantic models of its body and answer; the OpenAPI
3.1 document is generated from those models' JSON schemas, so it cannot drift from what the handlers validate
and return. The document itself is public (it holds no data, only shapes), like most OpenAPI documents.

Usage::

    OPERATIONS = (Operation("POST", "/agents", create_agent, "Create an agent", body=AgentIn, answer=AgentOut,
                            status=201),)
    routes = [*routes_of(OPERATIONS), openapi_route(OPERATIONS)]
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import __version__
from ..governance.models import ErrorOut
from .common import json_response

__all__ = ["Operation", "openapi_document", "openapi_path", "openapi_route", "routes_of"]

_REF = "#/components/schemas/{model}"
_ERRORS = {
    "400": "Invalid body or parameter (the message names the field)",
    "401": "Missing or invalid key",
    "403": "Not an admin key, or another workspace",
    "404": "No such entity in this workspace",
    "409": "The entity exists already, or is still referenced (the message names by what)",
}
_CONVERTER = re.compile(r"{(\w+):\w+}")  # Starlette's "{model:path}" is OpenAPI's "{model}"


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str  # under /admin, e.g. "/agents/{agent_id}" (a Starlette converter such as "{model:path}" is allowed)
    endpoint: Callable[[Request], Awaitable[Response]]
    summary: str
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    many: bool = False  # the answer is a list of ``answer``
    status: int = 200


def routes_of(operations: Sequence[Operation]) -> list[BaseRoute]:
    # One route per method: Starlette keeps looking when a path matches with another method.
    return [Route(op.path, op.endpoint, methods=[op.method]) for op in operations]


def openapi_path(path: str) -> str:
    """``path`` as OpenAPI writes it: Starlette's path converters dropped (``{model:path}`` → ``{model}``)."""
    return _CONVERTER.sub(r"{\1}", path)


def openapi_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """An OpenAPI 3.1 document for ``operations``, its schemas generated from their pydantic models."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorOut, "serialization")]
    models += [(op.body, "validation") for op in operations if op.body is not None]
    models += [(op.answer, "serialization") for op in operations if op.answer is not None]
    refs, definitions = models_json_schema(list(dict.fromkeys(models)), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for op in operations:
        # One handler may serve two routes (DELETE /keys/{id} and POST /keys/{id}/revoke); ids must stay unique.
        operation_id = op.endpoint.__name__
        if operation_id in operation_ids:
            operation_id += "_" + op.method.lower()
        operation_ids.add(operation_id)
        path = "/admin" + openapi_path(op.path)
        answer: dict[str, Any] = {"description": op.summary}
        if op.answer is not None:
            schema = refs[(op.answer, "serialization")]
            answer["content"] = {
                "application/json": {"schema": {"type": "array", "items": schema} if op.many else schema}
            }
        responses: dict[str, Any] = {str(op.status): answer}
        error = {"content": {"application/json": {"schema": refs[(ErrorOut, "serialization")]}}}
        responses.update({code: {"description": text, **error} for code, text in _ERRORS.items()})
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": operation_id,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", openapi_path(op.path))
            ]
            + [
                {
                    "name": "workspace_id",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The workspace to act on (master key only; an admin key acts on its own).",
                }
            ],
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Alephant admin API", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def openapi_route(operations: Sequence[Operation]) -> BaseRoute:
    document = openapi_document(operations)

    async def openapi(request: Request) -> Response:
        return json_response(document)

    return Route("/openapi.json", openapi, methods=["GET"])
