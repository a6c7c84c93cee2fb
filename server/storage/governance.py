"""Governance entities in the store: workspaces, departments, agents and sealed provider keys.

Every change bumps the snapshot counter (``keys.bump_version``) in its own transaction, so every gateway
reloads its in-memory governance snapshot within ``key_refresh_interval``. Provider keys are sealed by the
caller's ``SecretBox`` before they reach a statement; this module never sees a master key. Deleting an entity
never cascades: while live keys, agents, budgets... still refer to it, ``InUse`` names them and nothing changes.
"""

from __future__ import annotations

import builtins
import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.database import Database
from server.storage.schema import (
    agents,
    api_keys,
    budgets,
    departments,
    limits,
    paid_endpoints,
    price_overrides,
    provider_keys,
    wallets,
    workspaces,
)
from server.storage.state import bump_version

__all__ = [
    "DEFAULT_WORKSPACE",
    "AgentRecord",
    "Conflict",
    "DepartmentRecord",
    "GovernanceStore",
    "InUse",
    "ProviderKeyRecord",
    "Sealer",
    "Unknown",
    "WorkspaceRecord",
    "ensure_workspace",
    "provider_key_context",
]

DEFAULT_WORKSPACE = "default"


class Conflict(Exception):
    """The entity exists already (a duplicate id or name); the message names it."""


class Unknown(LookupError):
    """A named entity does not exist in that workspace; the message names it."""


class InUse(Exception):
    """The entity cannot be deleted: others still reference it (the message names them), or it is ``default``."""


class Sealer(Protocol):
    """What provider keys are sealed and opened with (``server.governance.crypto.SecretBox``)."""

    key_id: str

    def seal(self, secret: str, *, context: str) -> str: ...

    def open(self, value: str, *, context: str) -> str: ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WorkspaceRecord:
    id: str
    name: str
    time_zone: str = "UTC"
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DepartmentRecord:
    id: str
    workspace_id: str
    name: str
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class AgentRecord:
    id: str
    workspace_id: str
    department_id: str | None = None
    owner: str | None = None
    description: str | None = None
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProviderKeyRecord:
    """A provider key as stored: only its sealed form, never the secret."""

    id: str
    workspace_id: str
    provider: str
    name: str
    ciphertext: str = dataclasses.field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None


def provider_key_context(record: ProviderKeyRecord) -> str:
    """The associated data a provider key is sealed with: its row, so a ciphertext cannot move rows."""
    return f"{record.id}|{record.workspace_id}|{record.provider}"


async def ensure_workspace(db: Database, connection: AsyncConnection, workspace_id: str) -> None:
    """Give a workspace named by a key or entity its row (default settings) if it has none yet."""
    row = {"id": workspace_id, "name": workspace_id, "time_zone": "UTC", "policy": {}, "created_at": _now()}
    await connection.execute(db.insert(workspaces).values(row).on_conflict_do_nothing(index_elements=["id"]))


def _now() -> datetime:
    return datetime.now(UTC)


# A reference check: (singular, plural) label, the column naming each referrer, which rows refer.
_Check = tuple[tuple[str, str], sa.Column[Any], sa.ColumnElement[bool]]
_SHOWN = 5  # referrers named per kind in a refusal; the count says how many more


def _live_keys(where: sa.ColumnElement[bool]) -> _Check:
    live = sa.and_(
        where, api_keys.c.revoked_at.is_(None), sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > _now())
    )
    return ("live key", "live keys"), api_keys.c.id, live


def _budgets_on(workspace_id: str, scope: str, scope_id: str) -> _Check:
    where = sa.and_(budgets.c.workspace_id == workspace_id, budgets.c.scope == scope, budgets.c.scope_id == scope_id)
    return ("budget", "budgets"), budgets.c.id, where


async def _refuse_if_referenced(connection: AsyncConnection, entity: str, checks: Sequence[_Check]) -> None:
    """Raise ``InUse`` naming every kind of referrer and the first few of each, when there is any."""
    found = []
    for (one, many), column, where in checks:
        ids = (await connection.execute(sa.select(column).where(where).order_by(column))).scalars().all()
        if ids:
            shown = ", ".join(str(i) for i in ids[:_SHOWN]) + (
                f", and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else ""
            )
            found.append(f"{len(ids)} {one if len(ids) == 1 else many} ({shown})")
    if found:
        raise InUse(
            f"{entity} is still referenced by {'; '.join(found)}: revoke or delete them first "
            "(request-log rows and ledger entries are history and stay)"
        )


def _rows(table: sa.Table, record_type: type[Any], rows: Sequence[sa.Row[Any]]) -> list[Any]:
    return [record_type(**dict(row._mapping)) for row in rows]


class GovernanceStore:
    """Workspaces, departments, agents and provider keys as the admin API and the CLI manage them.

    Usage::

        store = GovernanceStore(db)
        await store.create_workspace(id="acme", name="Acme", time_zone="Europe/Paris", policy={})
        await store.create_agent(workspace_id="acme", id="support-bot", owner="ops", policy={"deny_models": []})
        key = await store.add_provider_key(workspace_id="acme", provider="openai", name="prod", secret=s, box=box)
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- workspaces ---

    async def create_workspace(
        self, *, id: str, name: str, time_zone: str = "UTC", policy: Mapping[str, Any] | None = None
    ) -> WorkspaceRecord:
        record = WorkspaceRecord(id=id, name=name, time_zone=time_zone, policy=dict(policy or {}), created_at=_now())
        async with self._db.engine.begin() as connection:
            if await self._exists(connection, workspaces, workspaces.c.id == id):
                raise Conflict(f"workspace '{id}' exists already")
            await connection.execute(workspaces.insert().values(dataclasses.asdict(record)))
            await bump_version(self._db, connection)
        return record

    async def workspaces(self) -> builtins.list[WorkspaceRecord]:
        return await self._select(workspaces, WorkspaceRecord, sa.true(), workspaces.c.id)

    async def workspace(self, workspace_id: str) -> WorkspaceRecord:
        found = await self._select(workspaces, WorkspaceRecord, workspaces.c.id == workspace_id, workspaces.c.id)
        if not found:
            raise Unknown(f"no workspace '{workspace_id}'")
        result: WorkspaceRecord = found[0]
        return result

    async def time_zone(self, workspace_id: str) -> str:
        """The workspace's IANA zone for budget periods; UTC for one without a row yet (its row gets UTC)."""
        async with self._db.engine.connect() as connection:
            found = (
                await connection.execute(sa.select(workspaces.c.time_zone).where(workspaces.c.id == workspace_id))
            ).scalar()
        return str(found) if found is not None else "UTC"

    async def update_workspace(self, workspace_id: str, **changes: Any) -> WorkspaceRecord:
        await self._update(workspaces, workspaces.c.id == workspace_id, changes, f"no workspace '{workspace_id}'")
        return await self.workspace(workspace_id)

    async def delete_workspace(self, workspace_id: str) -> WorkspaceRecord:
        """Delete a workspace that owns nothing any more; ``InUse`` names what still refers to it."""
        if workspace_id == DEFAULT_WORKSPACE:
            raise InUse(f"workspace '{DEFAULT_WORKSPACE}' cannot be deleted: the master key and new keys act on it")
        record = await self.workspace(workspace_id)
        owned = [
            _live_keys(api_keys.c.workspace_id == workspace_id),
            (
                ("live provider key", "live provider keys"),
                provider_keys.c.id,
                sa.and_(provider_keys.c.workspace_id == workspace_id, provider_keys.c.revoked_at.is_(None)),
            ),
            (("department", "departments"), departments.c.id, departments.c.workspace_id == workspace_id),
            (("agent", "agents"), agents.c.id, agents.c.workspace_id == workspace_id),
            (("budget", "budgets"), budgets.c.id, budgets.c.workspace_id == workspace_id),
            (("limit", "limits"), limits.c.id, limits.c.workspace_id == workspace_id),
            (
                ("price override", "price overrides"),
                price_overrides.c.model,
                price_overrides.c.workspace_id == workspace_id,
            ),
            (("paid endpoint", "paid endpoints"), paid_endpoints.c.id, paid_endpoints.c.workspace_id == workspace_id),
            (("wallet", "wallets"), wallets.c.id, wallets.c.workspace_id == workspace_id),
        ]
        await self._delete(workspaces, workspaces.c.id == workspace_id, f"workspace '{workspace_id}'", owned)
        return record

    # --- departments ---

    async def create_department(self, *, workspace_id: str, name: str, id: str | None = None) -> DepartmentRecord:
        record = DepartmentRecord(
            id=id or "dep_" + secrets.token_hex(6), workspace_id=workspace_id, name=name, created_at=_now()
        )
        async with self._db.engine.begin() as connection:
            if await self._exists(connection, departments, departments.c.id == record.id):
                raise Conflict(f"department '{record.id}' exists already")
            named = sa.and_(departments.c.workspace_id == workspace_id, departments.c.name == name)
            if await self._exists(connection, departments, named):
                raise Conflict(f"workspace '{workspace_id}' has a department named '{name}' already")
            await ensure_workspace(self._db, connection, workspace_id)
            await connection.execute(departments.insert().values(dataclasses.asdict(record)))
            await bump_version(self._db, connection)
        return record

    async def departments(self, workspace_id: str) -> builtins.list[DepartmentRecord]:
        where = departments.c.workspace_id == workspace_id
        return await self._select(departments, DepartmentRecord, where, departments.c.name)

    async def department(self, workspace_id: str, department_id: str) -> DepartmentRecord:
        where = sa.and_(departments.c.workspace_id == workspace_id, departments.c.id == department_id)
        found = await self._select(departments, DepartmentRecord, where, departments.c.id)
        if not found:
            raise Unknown(f"no department '{department_id}' in workspace '{workspace_id}'")
        result: DepartmentRecord = found[0]
        return result

    async def delete_department(self, workspace_id: str, department_id: str) -> DepartmentRecord:
        """Delete a department no live key, agent or budget refers to; ``InUse`` names those that do."""
        record = await self.department(workspace_id, department_id)
        in_workspace = api_keys.c.workspace_id == workspace_id
        referrers = [
            _live_keys(sa.and_(in_workspace, api_keys.c.department_id == department_id)),
            (
                ("agent", "agents"),
                agents.c.id,
                sa.and_(agents.c.workspace_id == workspace_id, agents.c.department_id == department_id),
            ),
            _budgets_on(workspace_id, "department", department_id),
        ]
        where = sa.and_(departments.c.workspace_id == workspace_id, departments.c.id == department_id)
        await self._delete(departments, where, f"department '{department_id}'", referrers)
        return record

    # --- agents ---

    async def create_agent(
        self,
        *,
        workspace_id: str,
        id: str,
        department_id: str | None = None,
        owner: str | None = None,
        description: str | None = None,
        policy: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AgentRecord:
        record = AgentRecord(
            id=id,
            workspace_id=workspace_id,
            department_id=department_id,
            owner=owner,
            description=description,
            policy=dict(policy or {}),
            metadata=dict(metadata or {}),
            created_at=_now(),
        )
        async with self._db.engine.begin() as connection:
            where = sa.and_(agents.c.workspace_id == workspace_id, agents.c.id == id)
            if await self._exists(connection, agents, where):
                raise Conflict(f"workspace '{workspace_id}' has an agent '{id}' already")
            await self.check_department(connection, workspace_id, department_id)
            await ensure_workspace(self._db, connection, workspace_id)
            await connection.execute(agents.insert().values(dataclasses.asdict(record)))
            await bump_version(self._db, connection)
        return record

    async def agents(self, workspace_id: str | None = None) -> builtins.list[AgentRecord]:
        where = sa.true() if workspace_id is None else agents.c.workspace_id == workspace_id
        return await self._select(agents, AgentRecord, where, agents.c.id)

    async def agent(self, workspace_id: str, agent_id: str) -> AgentRecord:
        found = await self._select(agents, AgentRecord, self._agent_row(workspace_id, agent_id), agents.c.id)
        if not found:
            raise Unknown(f"no agent '{agent_id}' in workspace '{workspace_id}'")
        result: AgentRecord = found[0]
        return result

    async def update_agent(self, workspace_id: str, agent_id: str, **changes: Any) -> AgentRecord:
        if changes.get("department_id") is not None:
            async with self._db.engine.connect() as connection:
                await self.check_department(connection, workspace_id, changes["department_id"])
        missing = f"no agent '{agent_id}' in workspace '{workspace_id}'"
        await self._update(agents, self._agent_row(workspace_id, agent_id), changes, missing)
        return await self.agent(workspace_id, agent_id)

    async def delete_agent(self, workspace_id: str, agent_id: str) -> AgentRecord:
        """Delete an agent no live key, budget, limit or wallet refers to; ``InUse`` names those that do."""
        record = await self.agent(workspace_id, agent_id)
        referrers = [
            _live_keys(sa.and_(api_keys.c.workspace_id == workspace_id, api_keys.c.agent_id == agent_id)),
            _budgets_on(workspace_id, "agent", agent_id),
            (
                ("limit", "limits"),
                limits.c.id,
                sa.and_(
                    limits.c.workspace_id == workspace_id, limits.c.scope == "agent", limits.c.scope_id == agent_id
                ),
            ),
            (
                ("wallet", "wallets"),
                wallets.c.id,
                sa.and_(wallets.c.workspace_id == workspace_id, wallets.c.agent_id == agent_id),
            ),
        ]
        await self._delete(agents, self._agent_row(workspace_id, agent_id), f"agent '{agent_id}'", referrers)
        return record

    async def check_department(self, connection: AsyncConnection, workspace_id: str, department_id: str | None) -> None:
        where = sa.and_(departments.c.workspace_id == workspace_id, departments.c.id == department_id)
        if department_id is not None and not await self._exists(connection, departments, where):
            raise Unknown(f"no department '{department_id}' in workspace '{workspace_id}'")

    async def check_agent(self, connection: AsyncConnection, workspace_id: str, agent_id: str | None) -> None:
        if agent_id is not None and not await self._exists(connection, agents, self._agent_row(workspace_id, agent_id)):
            raise Unknown(f"no agent '{agent_id}' in workspace '{workspace_id}'")

    @staticmethod
    def _agent_row(workspace_id: str, agent_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(agents.c.workspace_id == workspace_id, agents.c.id == agent_id)

    # --- provider keys ---

    async def add_provider_key(
        self, *, workspace_id: str, provider: str, name: str, secret: str, box: Sealer
    ) -> ProviderKeyRecord:
        record = ProviderKeyRecord(
            id="pk_" + secrets.token_hex(8),
            workspace_id=workspace_id,
            provider=provider,
            name=name,
            ciphertext="",
            created_at=_now(),
        )
        record = dataclasses.replace(record, ciphertext=box.seal(secret, context=provider_key_context(record)))
        async with self._db.engine.begin() as connection:
            await ensure_workspace(self._db, connection, workspace_id)
            await connection.execute(provider_keys.insert().values(dataclasses.asdict(record)))
            await bump_version(self._db, connection)
        return record

    async def provider_keys(
        self, workspace_id: str | None = None, *, include_revoked: bool = False
    ) -> builtins.list[ProviderKeyRecord]:
        where = sa.true() if workspace_id is None else provider_keys.c.workspace_id == workspace_id
        if not include_revoked:
            where = sa.and_(where, provider_keys.c.revoked_at.is_(None))
        return await self._select(provider_keys, ProviderKeyRecord, where, provider_keys.c.created_at)

    async def revoke_provider_key(self, workspace_id: str, key_id: str) -> ProviderKeyRecord:
        where = sa.and_(provider_keys.c.workspace_id == workspace_id, provider_keys.c.id == key_id)
        async with self._db.engine.begin() as connection:
            rows = (await connection.execute(sa.select(provider_keys).where(where))).all()
            if not rows:
                raise Unknown(f"no provider key '{key_id}' in workspace '{workspace_id}'")
            record: ProviderKeyRecord = _rows(provider_keys, ProviderKeyRecord, rows)[0]
            if record.revoked_at is not None:
                return record
            now = _now()
            await connection.execute(provider_keys.update().where(where).values(revoked_at=now))
            await bump_version(self._db, connection)
        return dataclasses.replace(record, revoked_at=now)

    async def reseal_provider_keys(self, old: Sealer, new: Sealer) -> int:
        """Re-encrypt every provider key (revoked ones too) from ``old`` to ``new`` in one transaction.

        All or nothing: a key that ``old`` cannot open stops the rotation before anything is written.
        """
        async with self._db.engine.begin() as connection:
            rows = (await connection.execute(sa.select(provider_keys).with_for_update())).all()
            records: list[ProviderKeyRecord] = _rows(provider_keys, ProviderKeyRecord, rows)
            for record in records:
                context = provider_key_context(record)
                sealed = new.seal(old.open(record.ciphertext, context=context), context=context)
                await connection.execute(
                    provider_keys.update().where(provider_keys.c.id == record.id).values(ciphertext=sealed)
                )
            await bump_version(self._db, connection)
        return len(records)

    # --- shared ---

    async def _select(
        self, table: sa.Table, record_type: type[Any], where: sa.ColumnElement[bool], order: sa.Column[Any]
    ) -> builtins.list[Any]:
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(sa.select(table).where(where).order_by(order))).all()
        return _rows(table, record_type, rows)

    async def _update(
        self, table: sa.Table, where: sa.ColumnElement[bool], changes: Mapping[str, Any], missing: str
    ) -> None:
        async with self._db.engine.begin() as connection:
            if not await self._exists(connection, table, where):
                raise Unknown(missing)
            if changes:
                await connection.execute(table.update().where(where).values(**changes))
                await bump_version(self._db, connection)

    async def _delete(
        self, table: sa.Table, where: sa.ColumnElement[bool], entity: str, referrers: Sequence[_Check]
    ) -> None:
        async with self._db.engine.begin() as connection:
            await _refuse_if_referenced(connection, entity, referrers)
            if (await connection.execute(table.delete().where(where))).rowcount == 0:
                raise Unknown(f"no {entity}")
            await bump_version(self._db, connection)

    @staticmethod
    async def _exists(connection: AsyncConnection, table: sa.Table, where: sa.ColumnElement[bool]) -> bool:
        return (await connection.execute(sa.select(sa.literal(1)).select_from(table).where(where))).first() is not None
