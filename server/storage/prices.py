"""Workspace price overrides in the store, and the version counter gateways poll to reload them.

The admin API writes here; the request path never reads here: ``server.price_overrides`` loads every
override into the ``PriceBook``'s in-memory snapshot when ``state_version('prices')`` moves.
"""

from __future__ import annotations

import builtins
import dataclasses
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from finance.money import Nano
from server.storage.database import Database
from server.storage.schema import price_overrides, state_version

__all__ = ["PRICES_STATE", "PriceOverride", "PriceStore"]

PRICES_STATE = "prices"  # the state_version row bumped with every override change


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PriceOverride:
    """One workspace's price for ``provider/model`` (or ``provider/*``), per million tokens and per request."""

    workspace_id: str
    model: str
    input_mtok_nano: Nano
    output_mtok_nano: Nano
    cache_read_mtok_nano: Nano | None = None
    cache_write_mtok_nano: Nano | None = None
    reasoning_mtok_nano: Nano | None = None
    request_nano: Nano = 0
    version: int = 1
    note: str | None = None
    updated_at: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))


def _override(row: sa.Row[Any]) -> PriceOverride:
    return PriceOverride(**dict(row._mapping))


class PriceStore:
    """Usage::

    prices = PriceStore(db)
    stored = await prices.put(PriceOverride(workspace_id="ws_1", model="openai/gpt-4o", ...))
    stored.version  # 1, then 2 after the next put of the same model
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, override: PriceOverride) -> PriceOverride:
        """Create or replace an override; its version counts the changes."""
        values = dataclasses.asdict(override) | {"version": 1, "updated_at": datetime.now(UTC)}
        changed = {name: value for name, value in values.items() if name not in {"workspace_id", "model", "version"}}
        upsert = self._db.insert(price_overrides).values(values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[price_overrides.c.workspace_id, price_overrides.c.model],
            set_={**changed, "version": price_overrides.c.version + 1},
        )
        async with self._db.engine.begin() as connection:
            await connection.execute(upsert)
            await _bump_version(self._db, connection)
            row = (await connection.execute(_select(override.workspace_id, override.model))).one()
        return _override(row)

    async def delete(self, workspace_id: str, model: str) -> PriceOverride | None:
        async with self._db.engine.begin() as connection:
            row = (await connection.execute(_select(workspace_id, model))).first()
            if row is None:
                return None
            await connection.execute(
                price_overrides.delete().where(
                    price_overrides.c.workspace_id == workspace_id, price_overrides.c.model == model
                )
            )
            await _bump_version(self._db, connection)
        return _override(row)

    async def list(self, workspace_id: str | None = None) -> builtins.list[PriceOverride]:
        query = sa.select(price_overrides).order_by(price_overrides.c.workspace_id, price_overrides.c.model)
        if workspace_id is not None:
            query = query.where(price_overrides.c.workspace_id == workspace_id)
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_override(row) for row in rows]

    async def version(self) -> int:
        query = sa.select(state_version.c.version).where(state_version.c.name == PRICES_STATE)
        async with self._db.engine.connect() as connection:
            value = (await connection.execute(query)).scalar()
        return 0 if value is None else int(value)


def _select(workspace_id: str, model: str) -> sa.Select[Any]:
    return sa.select(price_overrides).where(
        price_overrides.c.workspace_id == workspace_id, price_overrides.c.model == model
    )


async def _bump_version(db: Database, connection: AsyncConnection) -> None:
    upsert = db.insert(state_version).values(name=PRICES_STATE, version=1)
    await connection.execute(
        upsert.on_conflict_do_update(
            index_elements=[state_version.c.name], set_={"version": state_version.c.version + 1}
        )
    )
