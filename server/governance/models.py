"""The admin API's bodies and answers for governance entities, as pydantic models (the CLI validates with them too).

They validate what comes in (a 400 naming the field otherwise, via ``common.read_body``), shape what goes out
(never a key hash, never a provider key's secret or ciphertext), and are the one source of the OpenAPI document
(``server.admin.openapi``): nothing is described twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from .policy import PolicySpec

__all__ = [
    "AgentIn",
    "AgentOut",
    "AgentPatch",
    "CreatedKeyOut",
    "DepartmentIn",
    "DepartmentOut",
    "ErrorOut",
    "KeyIn",
    "KeyOut",
    "KeyPatch",
    "ProviderKeyIn",
    "ProviderKeyOut",
    "WorkspaceIn",
    "WorkspaceOut",
    "WorkspacePatch",
]

# The Alephant-Agent-Id header's charset, so any id can be sent as a header and stored as a log column.
EntityId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-]{1,128}$", description="1-128 of A-Z a-z 0-9 . - _ :")]
Scope = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.:\-]{0,63}$", description='e.g. "admin"')]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' is not an IANA time zone name (e.g. 'UTC', 'Europe/Paris')") from None
    return name


TimeZone = Annotated[str, AfterValidator(_time_zone), Field(description="IANA name, e.g. Europe/Paris")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class WorkspaceIn(_In):
    id: EntityId
    name: Name | None = Field(default=None, description="Defaults to the id.")
    time_zone: TimeZone = "UTC"
    policy: PolicySpec = Field(default_factory=PolicySpec)


class WorkspacePatch(_In):
    name: Name | None = None
    time_zone: TimeZone | None = None
    policy: PolicySpec | None = None


class WorkspaceOut(_Out):
    id: str
    name: str
    time_zone: str
    policy: dict[str, Any]
    created_at: datetime


class DepartmentIn(_In):
    id: EntityId | None = Field(default=None, description="Generated (dep_...) when absent.")
    name: Name


class DepartmentOut(_Out):
    id: str
    workspace_id: str
    name: str
    created_at: datetime


class AgentIn(_In):
    id: EntityId = Field(description="The Agent ID, as sent in Alephant-Agent-Id; unique per workspace.")
    department_id: EntityId | None = None
    owner: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    policy: PolicySpec = Field(default_factory=PolicySpec)
    metadata: dict[str, Any] = Field(default_factory=dict)


class AgentPatch(_In):
    department_id: EntityId | None = None
    owner: Name | None = None
    description: str | None = Field(default=None, max_length=2000)
    policy: PolicySpec | None = None
    metadata: dict[str, Any] | None = None


class AgentOut(_Out):
    id: str
    workspace_id: str
    department_id: str | None
    owner: str | None
    description: str | None
    policy: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime


class KeyPolicy(_In):
    """A key's own rules beside its allowed models (``models``)."""

    deny_models: list[str] = Field(default_factory=list)
    providers: list[str] = Field(default_factory=list)
    max_tokens: int | None = Field(default=None, ge=1)


class KeyIn(_In):
    name: Name
    models: list[str] = Field(default_factory=list, description="Allowed provider/model globs; empty: all.")
    department_id: EntityId | None = None
    agent_id: EntityId | None = Field(default=None, description="Bind the key to this agent.")
    scopes: list[Scope] = Field(default_factory=list, description='"admin" opens /admin/* for the workspace.')
    policy: KeyPolicy = Field(default_factory=KeyPolicy)
    expires_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class KeyPatch(_In):
    models: list[str] | None = None
    department_id: EntityId | None = None
    agent_id: EntityId | None = None
    scopes: list[Scope] | None = None
    policy: KeyPolicy | None = None
    expires_at: datetime | None = None


class KeyOut(_Out):
    id: str
    name: str
    workspace_id: str
    prefix: str
    models: list[str]
    department_id: str | None
    agent_id: str | None
    scopes: list[str]
    policy: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    metadata: dict[str, Any]


class CreatedKeyOut(KeyOut):
    secret: str = Field(description="Shown once, never again: only its hash is stored.")


class ProviderKeyIn(_In):
    provider: str = Field(description="A catalog provider id, e.g. openai.")
    name: Name
    secret: SecretStr = Field(description="The provider's API key; stored encrypted, never returned.")


class ProviderKeyOut(_Out):
    id: str
    workspace_id: str
    provider: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class _ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorOut(BaseModel):
    error: _ErrorDetail
