"""Admin API for virtual keys: create (the secret is returned once), list, get, change, revoke.

Keys belong to the workspace the request acts on; a key of another workspace is a 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidRequest, NotFound
from ..governance.models import CreatedKeyOut, KeyIn, KeyOut, KeyPatch
from ..storage import KeyRecord, KeyStore
from ..storage.schema import as_utc
from ._store_errors import store_errors
from .common import Admin, admin_endpoint, json_response, read_body, services
from .openapi import Operation

__all__ = ["OPERATIONS"]


def _store(request: Request) -> KeyStore:
    return KeyStore(services(request).database)


def _out(record: KeyRecord) -> KeyOut:
    return KeyOut.model_validate(record)


def _future(expires_at: datetime | None) -> None:
    if expires_at is not None and as_utc(expires_at) <= datetime.now(tz=UTC):
        raise InvalidRequest(f"expires_at {expires_at.isoformat()} is in the past.", param="expires_at")


def _missing(key_id: str, admin: Admin) -> NotFound:
    return NotFound(f"No live key '{key_id}' in workspace '{admin.workspace_id}'. List them with GET /admin/keys.")


@admin_endpoint
async def create_key(request: Request, admin: Admin) -> Response:
    body = await read_body(request, KeyIn)
    _future(body.expires_at)
    reference = "agent_id" if body.agent_id else "department_id"
    with store_errors(reference=reference):
        record, secret = await _store(request).create(
            name=body.name,
            workspace_id=admin.workspace_id,
            models=body.models,
            expires_at=body.expires_at,
            metadata=body.metadata,
            department_id=body.department_id,
            agent_id=body.agent_id,
            scopes=body.scopes,
            policy=body.policy.model_dump(exclude_defaults=True),
        )
    created = CreatedKeyOut(**_out(record).model_dump(), secret=secret)
    return json_response(created, status=201)


@admin_endpoint
async def list_keys(request: Request, admin: Admin) -> Response:
    revoked = request.query_params.get("include_revoked", "").lower() in ("1", "true", "yes")
    found = await _store(request).list(workspace_id=admin.workspace_id, include_revoked=revoked)
    return json_response([_out(r) for r in found])


@admin_endpoint
async def get_key(request: Request, admin: Admin) -> Response:
    key_id = request.path_params["key_id"]
    record = await _store(request).get(key_id, workspace_id=admin.workspace_id)
    if record is None:
        raise _missing(key_id, admin)
    return json_response(_out(record))


@admin_endpoint
async def update_key(request: Request, admin: Admin) -> Response:
    key_id = request.path_params["key_id"]
    store = _store(request)
    if await store.get(key_id, workspace_id=admin.workspace_id) is None:
        raise _missing(key_id, admin)
    body = await read_body(request, KeyPatch)
    changes = body.model_dump(exclude_unset=True)
    if "policy" in changes:
        changes["policy"] = body.policy.model_dump(exclude_defaults=True) if body.policy else {}
    _future(body.expires_at)
    reference = "agent_id" if body.agent_id else "department_id"
    with store_errors(reference=reference):
        record = await store.update(key_id, workspace_id=admin.workspace_id, **changes)
    if record is None:
        raise _missing(key_id, admin)
    return json_response(_out(record))


@admin_endpoint
async def revoke_key(request: Request, admin: Admin) -> Response:
    key_id = request.path_params["key_id"]
    if not key_id.startswith("key_"):  # by id only: a prefix could name several keys
        raise _missing(key_id, admin)
    record = await _store(request).revoke(key_id, workspace_id=admin.workspace_id)
    if record is None:
        raise _missing(key_id, admin)
    return json_response(_out(record))


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/keys",
        create_key,
        "Create a virtual key; the secret is returned once",
        KeyIn,
        CreatedKeyOut,
        status=201,
    ),
    Operation("GET", "/keys", list_keys, "List keys (never their secrets)", answer=KeyOut, many=True),
    Operation("GET", "/keys/{key_id}", get_key, "Get a key", answer=KeyOut),
    Operation(
        "PATCH",
        "/keys/{key_id}",
        update_key,
        "Change a key's models, scopes, policy, expiry, department or agent",
        KeyPatch,
        KeyOut,
    ),
    Operation("DELETE", "/keys/{key_id}", revoke_key, "Revoke a key", answer=KeyOut),
    Operation("POST", "/keys/{key_id}/revoke", revoke_key, "Revoke a key", answer=KeyOut),
)
