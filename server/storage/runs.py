"""Runs and spans in the store: explicit runs, implicit ones aggregated from the request log, and non-request spans.

A request is already a span (its ``request_log`` row), so nothing here is written per request: a run row is
written when an agent starts or ends a run, a span row when something that is not a model call (a tool call,
a payment) is reported. Every read takes the workspace, so one workspace never sees another's runs.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.storage.database import Database
from server.storage.records import LogRow
from server.storage.schema import UTCDateTime, request_log, runs, spans

__all__ = ["RUN_STATUSES", "RunExists", "RunRecord", "RunStore", "RunSummary", "SpanRecord", "SpanStore"]

RUN_STATUSES = ("running", "completed", "failed", "cancelled", "implicit")


class RunExists(ValueError):
    """A run with that id already exists in the workspace."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """An explicit run as stored."""

    workspace_id: str
    id: str
    agent_id: str | None
    key_id: str | None
    status: str
    metadata: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None
    explicit: bool = True


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """One line of a run listing: an explicit run or an implicit one, with its requests aggregated."""

    id: str
    status: str  # running | completed | failed | cancelled, or implicit (no run row, only request headers)
    agent_id: str | None
    started_at: datetime  # an implicit run's first request
    ended_at: datetime | None
    last_seen: datetime | None  # the newest request of the run
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_nano: int
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SpanRecord:
    """A trace span that is not a request: a tool call, a payment, or anything an agent reports."""

    id: str
    workspace_id: str
    run_id: str
    kind: str  # tool | payment | custom
    name: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "ok"
    parent_id: str | None = None  # another span's id, or a request id
    session_id: str | None = None
    request_id: str | None = None
    cost_nano: int = 0
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)


def _run(row: sa.Row[Any]) -> RunRecord:
    return RunRecord(**dict(row._mapping))


class RunStore:
    """Explicit runs, and every run (explicit or implicit) of a workspace as a listing."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        *,
        workspace_id: str,
        run_id: str,
        agent_id: str | None,
        key_id: str | None,
        metadata: dict[str, Any],
        now: datetime,
    ) -> RunRecord:
        """Store a new running run; ``RunExists`` when the workspace already has one with that id."""
        record = RunRecord(
            workspace_id=workspace_id,
            id=run_id,
            agent_id=agent_id,
            key_id=key_id,
            status="running",
            metadata=metadata,
            started_at=now,
            ended_at=None,
        )
        insert = (
            self._db.insert(runs)
            .values(**dataclasses.asdict(record))
            .on_conflict_do_nothing(index_elements=[runs.c.workspace_id, runs.c.id])
        )
        async with self._db.engine.begin() as connection:
            if (await connection.execute(insert)).rowcount == 0:
                raise RunExists(run_id)
        return record

    async def get(self, workspace_id: str, run_id: str) -> RunRecord | None:
        query = sa.select(runs).where(runs.c.workspace_id == workspace_id, runs.c.id == run_id)
        async with self._db.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return _run(row) if row is not None else None

    async def end(self, workspace_id: str, run_id: str, *, status: str, now: datetime) -> RunRecord | None:
        """End a running run; a run already ended keeps its first ending (so ending twice is harmless)."""
        update = (
            runs.update()
            .where(runs.c.workspace_id == workspace_id, runs.c.id == run_id, runs.c.ended_at.is_(None))
            .values(status=status, ended_at=now)
        )
        async with self._db.engine.begin() as connection:
            await connection.execute(update)
            row = (
                await connection.execute(
                    sa.select(runs).where(runs.c.workspace_id == workspace_id, runs.c.id == run_id)
                )
            ).first()
        return _run(row) if row is not None else None

    async def requests(self, workspace_id: str, run_id: str, *, limit: int) -> list[LogRow]:
        """The run's request-log rows, oldest first, at most ``limit``."""
        query = (
            sa.select(request_log)
            .where(request_log.c.workspace_id == workspace_id, request_log.c.run_id == run_id)
            .order_by(request_log.c.created_at, request_log.c.request_id)
            .limit(limit)
        )
        async with self._db.engine.connect() as connection:
            return [LogRow(**dict(row._mapping)) for row in await connection.execute(query)]

    async def exists(self, workspace_id: str, run_id: str) -> bool:
        """Whether the workspace knows the run: a run row, or requests that named it."""
        explicit = sa.select(runs.c.id).where(runs.c.workspace_id == workspace_id, runs.c.id == run_id)
        implicit = sa.select(request_log.c.request_id).where(
            request_log.c.workspace_id == workspace_id, request_log.c.run_id == run_id
        )
        query = sa.select(sa.or_(sa.exists(explicit), sa.exists(implicit)))
        async with self._db.engine.connect() as connection:
            return bool((await connection.execute(query)).scalar_one())

    async def list(
        self,
        workspace_id: str,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:
        """Explicit runs and implicit ones, newest start first; ``after`` is the last (started_at, id) seen."""
        listing = self._listing(workspace_id).subquery("listing")
        conditions: list[sa.ColumnElement[bool]] = []
        if agent_id is not None:
            conditions.append(listing.c.agent_id == agent_id)
        if status is not None:
            conditions.append(listing.c.status == status)
        if since is not None:
            conditions.append(listing.c.started_at >= since)
        if until is not None:
            conditions.append(listing.c.started_at < until)
        if after is not None:
            started, run_id = after
            conditions.append(
                sa.or_(
                    listing.c.started_at < started,
                    sa.and_(listing.c.started_at == started, listing.c.id < run_id),
                )
            )
        query = (
            sa.select(listing)
            .where(*conditions)
            .order_by(listing.c.started_at.desc(), listing.c.id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as connection:
            rows = [dict(row._mapping) for row in await connection.execute(query)]
            explicit_ids = [row["id"] for row in rows if row["status"] != "implicit"]
            metadata: dict[str, dict[str, Any]] = {}
            if explicit_ids:
                found = await connection.execute(
                    sa.select(runs.c.id, runs.c.metadata).where(
                        runs.c.workspace_id == workspace_id, runs.c.id.in_(explicit_ids)
                    )
                )
                metadata = {row.id: row.metadata for row in found}
        return [
            RunSummary(
                id=row["id"],
                status=row["status"],
                agent_id=row["agent_id"],
                started_at=row["started_at"],
                ended_at=row["ended_at"],
                last_seen=row["last_seen"],
                requests=int(row["requests"] or 0),
                prompt_tokens=int(row["prompt_tokens"] or 0),
                completion_tokens=int(row["completion_tokens"] or 0),
                cost_nano=int(row["cost_nano"] or 0),
                metadata=metadata.get(row["id"], {}),
            )
            for row in rows
        ]

    @staticmethod
    def _listing(workspace_id: str) -> sa.CompoundSelect[Any]:
        """Explicit runs joined to their requests' aggregate, plus run ids that only requests named."""
        log = request_log.c
        usage = (
            sa.select(
                log.run_id.label("id"),
                sa.func.min(log.created_at).label("first_seen"),
                sa.func.max(log.created_at).label("last_seen"),
                sa.func.count().label("requests"),
                sa.cast(sa.func.sum(log.prompt_tokens), sa.BigInteger).label("prompt_tokens"),
                sa.cast(sa.func.sum(log.completion_tokens), sa.BigInteger).label("completion_tokens"),
                sa.cast(sa.func.sum(log.cost_nano), sa.BigInteger).label("cost_nano"),
                sa.func.max(log.agent_id).label("agent_id"),
            )
            .where(log.workspace_id == workspace_id, log.run_id.is_not(None))
            .group_by(log.run_id)
            .subquery("usage")
        )
        explicit = sa.select(
            runs.c.id,
            runs.c.status,
            sa.func.coalesce(runs.c.agent_id, usage.c.agent_id).label("agent_id"),
            runs.c.started_at,
            runs.c.ended_at,
            usage.c.last_seen,
            usage.c.requests,
            usage.c.prompt_tokens,
            usage.c.completion_tokens,
            usage.c.cost_nano,
        ).select_from(runs.outerjoin(usage, usage.c.id == runs.c.id))
        explicit = explicit.where(runs.c.workspace_id == workspace_id)
        has_row = sa.exists(sa.select(runs.c.id).where(runs.c.workspace_id == workspace_id, runs.c.id == usage.c.id))
        implicit = sa.select(
            usage.c.id,
            sa.literal("implicit", sa.Text).label("status"),
            usage.c.agent_id,
            usage.c.first_seen.label("started_at"),
            sa.cast(sa.null(), UTCDateTime).label("ended_at"),
            usage.c.last_seen,
            usage.c.requests,
            usage.c.prompt_tokens,
            usage.c.completion_tokens,
            usage.c.cost_nano,
        ).where(~has_row)
        return sa.union_all(explicit, implicit)


class SpanStore:
    """Non-request spans of a run's trace.

    Usage::

        await SpanStore(db).add(SpanRecord(id="spn_1", workspace_id="default", run_id="run_1", kind="tool",
                                           name="search", started_at=now, ended_at=later))
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, span: SpanRecord) -> bool:
        """Store a span; ``False`` when a span with its id already exists (nothing is overwritten)."""
        insert = (
            self._db.insert(spans)
            .values(**dataclasses.asdict(span))
            .on_conflict_do_nothing(index_elements=[spans.c.id])
        )
        async with self._db.engine.begin() as connection:
            return bool((await connection.execute(insert)).rowcount)

    async def for_run(self, workspace_id: str, run_id: str) -> list[SpanRecord]:
        query = (
            sa.select(spans)
            .where(spans.c.workspace_id == workspace_id, spans.c.run_id == run_id)
            .order_by(spans.c.started_at, spans.c.id)
        )
        async with self._db.engine.connect() as connection:
            return [SpanRecord(**dict(row._mapping)) for row in await connection.execute(query)]
