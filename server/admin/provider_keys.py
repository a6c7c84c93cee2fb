"""Admin API for bring-your-own provider keys: add (sealed with the master key), list, revoke.

The secret goes in once and never comes out: answers carry the key's id, provider and name only. Calls of the
workspace use its newest live key of a provider instead of the gateway environment's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidRequest
from ..governance.models import ProviderKeyIn, ProviderKeyOut
from ..storage.governance import GovernanceStore
from ._store_errors import store_errors
from .common import Admin, admin_endpoint, json_response, read_body, services
from .openapi import Operation

__all__ = ["OPERATIONS"]


@admin_endpoint
async def add_provider_key(request: Request, admin: Admin) -> Response:
    body = await read_body(request, ProviderKeyIn)
    found = services(request)
    if found.catalog.provider(body.provider) is None:
        raise InvalidRequest(
            f"Unknown provider '{body.provider}'. Use a catalog provider id (alephant models --all lists them).",
            param="provider",
        )
    secret = body.secret.get_secret_value()
    if not secret.strip():
        raise InvalidRequest("secret must not be empty.", param="secret")
    record = await GovernanceStore(found.database).add_provider_key(
        workspace_id=admin.workspace_id, provider=body.provider, name=body.name, secret=secret, box=found.keyring.box
    )
    return json_response(ProviderKeyOut.model_validate(record), status=201)


@admin_endpoint
async def list_provider_keys(request: Request, admin: Admin) -> Response:
    revoked = request.query_params.get("include_revoked", "").lower() in ("1", "true", "yes")
    found = await GovernanceStore(services(request).database).provider_keys(admin.workspace_id, include_revoked=revoked)
    return json_response([ProviderKeyOut.model_validate(k) for k in found])


@admin_endpoint
async def revoke_provider_key(request: Request, admin: Admin) -> Response:
    with store_errors():
        record = await GovernanceStore(services(request).database).revoke_provider_key(
            admin.workspace_id, request.path_params["provider_key_id"]
        )
    return json_response(ProviderKeyOut.model_validate(record))


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/provider-keys",
        add_provider_key,
        "Add a provider key (stored encrypted)",
        ProviderKeyIn,
        ProviderKeyOut,
        status=201,
    ),
    Operation(
        "GET",
        "/provider-keys",
        list_provider_keys,
        "List provider keys (never their secrets)",
        answer=ProviderKeyOut,
        many=True,
    ),
    Operation(
        "DELETE",
        "/provider-keys/{provider_key_id}",
        revoke_provider_key,
        "Revoke a provider key",
        answer=ProviderKeyOut,
    ),
)
