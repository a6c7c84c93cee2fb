"""Searching and pruning the request log: filters, keyset pages, and retention deletes in batches.

Pages are keyset pages on ``(created_at, request_id)``, newest first, so a page costs the same however deep it
is and rows written meanwhile never shift it. ``Alephant-Property-*`` values are matched in the JSON column:
``->>`` on PostgreSQL's JSONB, ``json_extract`` on SQLite (SQLAlchemy renders each). Nothing here runs on the
request path.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa

from server.storage.database import Database
from server.storage.records import LogRow
from server.storage.schema import request_log, spans

__all__ = ["PRUNE_BATCH_ROWS", "LogFilter", "LogSearch"]

PRUNE_BATCH_ROWS = 5_000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LogFilter:
    """Which rows to read; every field given narrows the search, ``None`` leaves a column free."""

    workspace_id: str | None = None
    key_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    model: str | None = None  # the name the client sent, or provider/model as resolved
    provider: str | None = None
    status: str | None = None  # ok | error | client_disconnected
    http_status: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    properties: dict[str, str] = dataclasses.field(default_factory=dict)

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        log = request_log.c
        found: list[sa.ColumnElement[bool]] = []
        for name in ("workspace_id", "key_id", "agent_id", "run_id", "session_id", "provider", "status"):
            value = getattr(self, name)
            if value is not None:
                found.append(log[name] == value)
        if self.model is not None:  # as the client named it, or as resolved (provider/model)
            found.append(sa.or_(log.model == self.model, (log.provider + "/" + log.upstream_model) == self.model))
        if self.http_status is not None:
            found.append(log.http_status == self.http_status)
        if self.since is not None:
            found.append(log.created_at >= self.since)
        if self.until is not None:
            found.append(log.created_at < self.until)
        for name, value in self.properties.items():
            found.append(log.properties[name].as_string() == value)
        return found


class LogSearch:
    """Filtered, paged reads of the request log, and retention."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(
        self, where: LogFilter, *, limit: int = 100, after: tuple[datetime, str] | None = None
    ) -> list[LogRow]:
        """Rows matching ``where``, newest first; ``after`` is the (created_at, request_id) of the last row seen."""
        log = request_log.c
        conditions = where.conditions()
        if after is not None:
            created, request_id = after
            conditions.append(
                sa.or_(log.created_at < created, sa.and_(log.created_at == created, log.request_id < request_id))
            )
        query = (
            sa.select(request_log)
            .where(*conditions)
            .order_by(log.created_at.desc(), log.request_id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as connection:
            return [LogRow(**dict(row._mapping)) for row in await connection.execute(query)]

    async def prune(
        self, before: datetime, *, workspace_id: str | None = None, batch_rows: int = PRUNE_BATCH_ROWS
    ) -> int:
        """Delete request-log rows and spans older than ``before``; in batches, so no delete holds locks long.

        Returns how many request-log rows went. Run rows stay: they are small, and say a run happened.
        """
        removed = 0
        for table, column, key in (
            (request_log, request_log.c.created_at, request_log.c.request_id),
            (spans, spans.c.started_at, spans.c.id),
        ):
            while True:
                oldest = sa.select(key).where(column < before)
                if workspace_id is not None:
                    oldest = oldest.where(table.c.workspace_id == workspace_id)
                batch = oldest.limit(batch_rows).scalar_subquery()
                async with self._db.engine.begin() as connection:
                    deleted = (await connection.execute(table.delete().where(key.in_(batch)))).rowcount
                if table is request_log:
                    removed += deleted
                if deleted < batch_rows:
                    break
        return removed
