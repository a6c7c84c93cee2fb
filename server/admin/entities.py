"""Admin API for governance entities: workspaces, departments and agents; and the one list of governance
operations (keys and provider keys included) that becomes routes here and entries of the OpenAPI document.

The master key manages every workspace; a key with the ``admin`` scope manages its own workspace only, and
cannot create or delete workspaces. Every change bumps the snapshot counter, so gateways apply it within
``key_refresh_interval``. Deleting never cascades: an entity something still refers to (live keys, agents,
departments, budgets...) is a 409 naming those referrers; request-log rows and ledger entries are history and
keep the ids they recorded.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..errors import PolicyDenied
from ..governance.models import (
    AgentIn,
    AgentOut,
    AgentPatch,
    DepartmentIn,
    DepartmentOut,
    WorkspaceIn,
    WorkspaceOut,
    WorkspacePatch,
)
from ..storage.governance import GovernanceStore
from . import keys, provider_keys
from ._store_errors import store_errors
from .common import Admin, admin_endpoint, json_response, read_body, services
from .openapi import Operation, routes_of

__all__ = ["OPERATIONS", "routes"]


def _store(request: Request) -> GovernanceStore:
    return GovernanceStore(services(request).database)


def _own_workspace(admin: Admin, workspace_id: str) -> None:
    if not admin.principal.is_master and workspace_id != admin.principal.workspace_id:
        raise PolicyDenied(
            f"This admin key belongs to workspace '{admin.principal.workspace_id}' and may not act on "
            f"'{workspace_id}'.",
            param="workspace_id",
        )


# --- workspaces ---


@admin_endpoint
async def create_workspace(request: Request, admin: Admin) -> Response:
    if not admin.principal.is_master:
        raise PolicyDenied("Only the master key may create workspaces.")
    body = await read_body(request, WorkspaceIn)
    with store_errors():
        record = await _store(request).create_workspace(
            id=body.id, name=body.name or body.id, time_zone=body.time_zone, policy=body.policy.model_dump()
        )
    return json_response(WorkspaceOut.model_validate(record), status=201)


@admin_endpoint
async def list_workspaces(request: Request, admin: Admin) -> Response:
    found = await _store(request).workspaces()
    if not admin.principal.is_master:
        found = [w for w in found if w.id == admin.principal.workspace_id]
    return json_response([WorkspaceOut.model_validate(w) for w in found])


@admin_endpoint
async def get_workspace(request: Request, admin: Admin) -> Response:
    workspace_id = request.path_params["workspace_id"]
    _own_workspace(admin, workspace_id)
    with store_errors():
        record = await _store(request).workspace(workspace_id)
    return json_response(WorkspaceOut.model_validate(record))


@admin_endpoint
async def update_workspace(request: Request, admin: Admin) -> Response:
    workspace_id = request.path_params["workspace_id"]
    _own_workspace(admin, workspace_id)
    body = await read_body(request, WorkspacePatch)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    with store_errors():
        record = await _store(request).update_workspace(workspace_id, **changes)
    return json_response(WorkspaceOut.model_validate(record))


@admin_endpoint
async def delete_workspace(request: Request, admin: Admin) -> Response:
    if not admin.principal.is_master:
        raise PolicyDenied("Only the master key may delete workspaces.")
    with store_errors():
        record = await _store(request).delete_workspace(request.path_params["workspace_id"])
    return json_response(WorkspaceOut.model_validate(record))


# --- departments ---


@admin_endpoint
async def create_department(request: Request, admin: Admin) -> Response:
    body = await read_body(request, DepartmentIn)
    with store_errors():
        record = await _store(request).create_department(workspace_id=admin.workspace_id, name=body.name, id=body.id)
    return json_response(DepartmentOut.model_validate(record), status=201)


@admin_endpoint
async def list_departments(request: Request, admin: Admin) -> Response:
    found = await _store(request).departments(admin.workspace_id)
    return json_response([DepartmentOut.model_validate(d) for d in found])


@admin_endpoint
async def get_department(request: Request, admin: Admin) -> Response:
    with store_errors():
        record = await _store(request).department(admin.workspace_id, request.path_params["department_id"])
    return json_response(DepartmentOut.model_validate(record))


@admin_endpoint
async def delete_department(request: Request, admin: Admin) -> Response:
    with store_errors():
        record = await _store(request).delete_department(admin.workspace_id, request.path_params["department_id"])
    return json_response(DepartmentOut.model_validate(record))


# --- agents ---


@admin_endpoint
async def create_agent(request: Request, admin: Admin) -> Response:
    body = await read_body(request, AgentIn)
    with store_errors(reference="department_id"):
        record = await _store(request).create_agent(
            workspace_id=admin.workspace_id,
            id=body.id,
            department_id=body.department_id,
            owner=body.owner,
            description=body.description,
            policy=body.policy.model_dump(),
            metadata=body.metadata,
        )
    return json_response(AgentOut.model_validate(record), status=201)


@admin_endpoint
async def list_agents(request: Request, admin: Admin) -> Response:
    found = await _store(request).agents(admin.workspace_id)
    return json_response([AgentOut.model_validate(a) for a in found])


@admin_endpoint
async def get_agent(request: Request, admin: Admin) -> Response:
    with store_errors():
        record = await _store(request).agent(admin.workspace_id, request.path_params["agent_id"])
    return json_response(AgentOut.model_validate(record))


@admin_endpoint
async def update_agent(request: Request, admin: Admin) -> Response:
    agent_id = request.path_params["agent_id"]
    store = _store(request)
    with store_errors():
        await store.agent(admin.workspace_id, agent_id)  # an unknown agent is a 404, before the body's 400s
    body = await read_body(request, AgentPatch)
    changes = body.model_dump(exclude_unset=True)
    with store_errors(reference="department_id"):
        record = await store.update_agent(admin.workspace_id, agent_id, **changes)
    return json_response(AgentOut.model_validate(record))


@admin_endpoint
async def delete_agent(request: Request, admin: Admin) -> Response:
    with store_errors():
        record = await _store(request).delete_agent(admin.workspace_id, request.path_params["agent_id"])
    return json_response(AgentOut.model_validate(record))


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/workspaces",
        create_workspace,
        "Create a workspace (master key)",
        WorkspaceIn,
        WorkspaceOut,
        status=201,
    ),
    Operation("GET", "/workspaces", list_workspaces, "List workspaces", answer=WorkspaceOut, many=True),
    Operation("GET", "/workspaces/{workspace_id}", get_workspace, "Get a workspace", answer=WorkspaceOut),
    Operation(
        "PATCH",
        "/workspaces/{workspace_id}",
        update_workspace,
        "Change a workspace's name, time zone or policy",
        WorkspacePatch,
        WorkspaceOut,
    ),
    Operation(
        "DELETE",
        "/workspaces/{workspace_id}",
        delete_workspace,
        "Delete a workspace that owns nothing (master key; never 'default')",
        answer=WorkspaceOut,
    ),
    Operation(
        "POST", "/departments", create_department, "Create a department", DepartmentIn, DepartmentOut, status=201
    ),
    Operation("GET", "/departments", list_departments, "List departments", answer=DepartmentOut, many=True),
    Operation("GET", "/departments/{department_id}", get_department, "Get a department", answer=DepartmentOut),
    Operation(
        "DELETE",
        "/departments/{department_id}",
        delete_department,
        "Delete a department no live key, agent or budget refers to",
        answer=DepartmentOut,
    ),
    Operation("POST", "/agents", create_agent, "Register an agent", AgentIn, AgentOut, status=201),
    Operation("GET", "/agents", list_agents, "List agents", answer=AgentOut, many=True),
    Operation("GET", "/agents/{agent_id}", get_agent, "Get an agent", answer=AgentOut),
    Operation("PATCH", "/agents/{agent_id}", update_agent, "Change an agent", AgentPatch, AgentOut),
    Operation(
        "DELETE",
        "/agents/{agent_id}",
        delete_agent,
        "Delete an agent no live key, budget, limit or wallet refers to",
        answer=AgentOut,
    ),
    *keys.OPERATIONS,
    *provider_keys.OPERATIONS,
)

routes = routes_of(OPERATIONS)
