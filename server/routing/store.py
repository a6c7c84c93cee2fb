"""Routers in the store: written by ``/admin/routers``, read into the in-memory ``Routers`` snapshot.

The request path never reads this table. ``RouterSync`` polls one ``state_version`` row ("routers") every
``key_refresh_interval`` seconds, like the key snapshot, and rebuilds the stored routers when it moved; a write
through this process's admin API reloads at once. A stored router that no longer builds (its provider's key
variable was unset since, say) is left out with a warning rather than take the others down with it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from finance.pricing import PriceBook
from providers.catalog import Catalog

from ..config import ConfigError, RouterConfig
from ..polling import Poller
from ..storage import Database
from ..storage.schema import routers as routers_table
from ..storage.schema import state_version
from .routers import Router, Routers, build_router

__all__ = ["ROUTERS_STATE", "RouterStore", "RouterSync", "StoredRouter"]

ROUTERS_STATE = "routers"
_log = logging.getLogger("alephant.routing")


class StoredRouter:
    __slots__ = ("config", "created_at", "id", "updated_at")

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.id: str = row["id"]
        self.config = RouterConfig.model_validate(row["config"])
        self.created_at: datetime = row["created_at"]
        self.updated_at: datetime = row["updated_at"]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config": self.config.model_dump(mode="json", exclude_defaults=True),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class RouterStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, router_id: str, config: RouterConfig) -> tuple[StoredRouter, bool]:
        """Create or replace a router; returns it and whether it was created."""
        now = datetime.now(UTC)
        document = config.model_dump(mode="json", exclude_defaults=True)
        async with self._db.engine.begin() as connection:
            found = (
                await connection.execute(sa.select(routers_table.c.id).where(routers_table.c.id == router_id))
            ).first()
            if found is None:
                await connection.execute(
                    routers_table.insert().values(id=router_id, config=document, created_at=now, updated_at=now)
                )
            else:
                await connection.execute(
                    routers_table.update()
                    .where(routers_table.c.id == router_id)
                    .values(config=document, updated_at=now)
                )
            await self._bump(connection)
            row = (await connection.execute(sa.select(routers_table).where(routers_table.c.id == router_id))).one()
        return StoredRouter(dict(row._mapping)), found is None

    async def get(self, router_id: str) -> StoredRouter | None:
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(sa.select(routers_table).where(routers_table.c.id == router_id))).first()
        return None if row is None else StoredRouter(dict(row._mapping))

    async def list(self) -> list[StoredRouter]:
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(sa.select(routers_table).order_by(routers_table.c.id))).all()
        return [StoredRouter(dict(row._mapping)) for row in rows]

    async def delete(self, router_id: str) -> bool:
        async with self._db.engine.begin() as connection:
            result = await connection.execute(routers_table.delete().where(routers_table.c.id == router_id))
            if result.rowcount:
                await self._bump(connection)
        return bool(result.rowcount)

    async def version(self) -> int:
        query = sa.select(state_version.c.version).where(state_version.c.name == ROUTERS_STATE)
        async with self._db.engine.connect() as connection:
            value = (await connection.execute(query)).scalar()
        return 0 if value is None else int(value)

    async def _bump(self, connection: Any) -> None:
        upsert = self._db.insert(state_version).values(name=ROUTERS_STATE, version=1)
        await connection.execute(
            upsert.on_conflict_do_update(
                index_elements=[state_version.c.name], set_={"version": state_version.c.version + 1}
            )
        )


class RouterSync:
    """Keeps ``routers``' stored part equal to the table, and builds routers for the admin API to validate."""

    def __init__(
        self,
        store: RouterStore,
        routers: Routers,
        *,
        catalog: Catalog,
        prices: PriceBook,
        env: Mapping[str, str],
        rng: random.Random,
        interval: float,
    ) -> None:
        self.store = store
        self.routers = routers
        self._catalog, self._prices, self._env, self._rng = catalog, prices, env, rng
        self._interval = interval
        self._version = -1
        self._poller = Poller(
            self.load,
            interval=interval,
            name="alephant-routers",
            failure="router snapshot refresh failed, keeping the previous one",
        )

    def build(self, router_id: str, config: RouterConfig) -> Router:
        """The router ``config`` describes, or ``ConfigError`` naming each problem."""
        return build_router(
            router_id, config, self._catalog, self._prices, self._env, self._rng, where=f"router {router_id}"
        )

    async def load(self, *, force: bool = False) -> None:
        version = await self.store.version()
        if version == self._version and not force:
            return
        built: dict[str, Router] = {}
        for stored in await self.store.list():
            if self.routers.configured(stored.id):
                continue
            try:
                built[stored.id] = self.build(stored.id, stored.config)
            except ConfigError as exc:
                _log.warning("stored router %r left out: %s", stored.id, "; ".join(exc.problems))
        self.routers.replace_stored(built)
        self._version = version

    def start(self) -> None:
        self._poller.start()

    async def stop(self) -> None:
        await self._poller.stop()
