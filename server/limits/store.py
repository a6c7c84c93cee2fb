"""Budget and limit definitions in the store, and the version counter gateways poll to reload them.

Every change bumps ``state_version('limits')`` in the same transaction, so each gateway's snapshot
(``server.limits.snapshot``) picks it up within ``key_refresh_interval`` without a query per request.
"""

from __future__ import annotations

import builtins
import dataclasses
import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from ..storage import Database
from ..storage.schema import budgets, limits, state_version
from .types import BudgetRule, LimitRule

__all__ = ["LIMITS_STATE", "LimitStore"]

LIMITS_STATE = "limits"


def _budget(row: sa.Row[Any]) -> BudgetRule:
    return BudgetRule(**dict(row._mapping))


def _limit(row: sa.Row[Any]) -> LimitRule:
    return LimitRule(**dict(row._mapping))


class LimitStore:
    """Usage::

    store = LimitStore(database)
    rule = await store.create_budget(workspace_id="default", scope="key", scope_id="key_1", period="daily",
                                     limit_nano=5_000_000_000, mode="hard", time_zone="Europe/Paris")
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_budget(self, **fields: Any) -> BudgetRule:
        rule = BudgetRule(id="bud_" + secrets.token_hex(8), created_at=datetime.now(UTC), **fields)
        await self._insert(budgets, _values(rule))
        return rule

    async def create_limit(self, **fields: Any) -> LimitRule:
        rule = LimitRule(id="lim_" + secrets.token_hex(8), created_at=datetime.now(UTC), **fields)
        await self._insert(limits, _values(rule))
        return rule

    async def budgets(self, workspace_id: str | None = None) -> builtins.list[BudgetRule]:
        query = sa.select(budgets).order_by(budgets.c.created_at, budgets.c.id)
        if workspace_id is not None:
            query = query.where(budgets.c.workspace_id == workspace_id)
        async with self._db.engine.connect() as connection:
            return [_budget(row) for row in (await connection.execute(query)).all()]

    async def limits(self, workspace_id: str | None = None) -> builtins.list[LimitRule]:
        query = sa.select(limits).order_by(limits.c.created_at, limits.c.id)
        if workspace_id is not None:
            query = query.where(limits.c.workspace_id == workspace_id)
        async with self._db.engine.connect() as connection:
            return [_limit(row) for row in (await connection.execute(query)).all()]

    async def delete(self, table: sa.Table, rule_id: str, *, workspace_id: str | None) -> bool:
        """Delete a budget or limit by id (within ``workspace_id`` unless None); False when there was none."""
        condition = table.c.id == rule_id
        if workspace_id is not None:
            condition = sa.and_(condition, table.c.workspace_id == workspace_id)
        async with self._db.engine.begin() as connection:
            deleted = (await connection.execute(table.delete().where(condition))).rowcount > 0
            if deleted:
                await self._bump(connection)
        return deleted

    async def version(self) -> int:
        query = sa.select(state_version.c.version).where(state_version.c.name == LIMITS_STATE)
        async with self._db.engine.connect() as connection:
            value = (await connection.execute(query)).scalar()
        return 0 if value is None else int(value)

    async def _insert(self, table: sa.Table, values: dict[str, Any]) -> None:
        async with self._db.engine.begin() as connection:
            await connection.execute(table.insert().values(values))
            await self._bump(connection)

    async def _bump(self, connection: AsyncConnection) -> None:
        upsert = self._db.insert(state_version).values(name=LIMITS_STATE, version=1)
        await connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[state_version.c.name], set_={"version": state_version.c.version + 1}
            )
        )


def _values(rule: BudgetRule | LimitRule) -> dict[str, Any]:
    return {field.name: getattr(rule, field.name) for field in dataclasses.fields(rule)}
