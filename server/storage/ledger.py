"""The money ledger in the store: ledger entries in, and the one query every report and budget reads.

Model costs are not copied into ``ledger_entries``: each request already has exactly one ``request_log`` row
with its ``cost_nano``, written off the hot path in batches. The ledger's reads are therefore the UNION ALL of
request-log costs (kind ``model_cost``) and ledger entries (every other kind), built in ``LedgerStore.sums``
and nowhere else, so that a summary, a CSV export, ``GET /v1/spend`` and a budget's reconciliation all add up
the same rows. Each branch is grouped in the database; ``finance.ledger.aggregate`` folds the partial sums.

Appending is idempotent per (workspace, idempotency key): the unique constraint decides between concurrent
retries, and the loser reads the winner's row back.
"""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from finance.ledger import BUDGET_KINDS, Group, Kind, Totals, aggregate
from finance.money import Nano
from server.storage.database import Database
from server.storage.records import MCP_TOOL_ENDPOINT
from server.storage.schema import ledger_entries, request_log

__all__ = ["LedgerEntry", "LedgerFilter", "LedgerStore", "new_entry_id"]


def new_entry_id() -> str:
    """Sortable and unique like request ids: 12 hex digits of milliseconds, then 16 random hex digits."""
    return f"le_{int(time.time() * 1000):012x}{os.urandom(8).hex()}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """One row of ``ledger_entries``; ``amount_nano`` is positive except for adjustments."""

    id: str
    created_at: datetime
    workspace_id: str
    kind: Kind
    amount_nano: Nano
    department_id: str | None = None
    key_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    request_id: str | None = None
    vendor: str | None = None
    tool: str | None = None
    endpoint: str | None = None
    idempotency_key: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LedgerFilter:
    """Which rows a read covers, within one workspace: a time window ``[since, until)`` and attribution."""

    since: datetime | None = None
    until: datetime | None = None
    department_id: str | None = None
    key_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None


_ATTRIBUTION = ("department_id", "key_id", "agent_id", "run_id", "session_id")
_FIELDS = tuple(field.name for field in dataclasses.fields(LedgerEntry))
assert set(_FIELDS) == set(ledger_entries.columns.keys()), "ledger_entries columns must follow LedgerEntry"


def _entry(row: sa.Row[Any]) -> LedgerEntry:
    values = dict(row._mapping)
    values["metadata"] = dict(values["metadata"] or {})
    return LedgerEntry(**values)


def _where(table: sa.Table, workspace_id: str, where: LedgerFilter) -> list[sa.ColumnElement[bool]]:
    conditions = [table.c.workspace_id == workspace_id]
    if where.since is not None:
        conditions.append(table.c.created_at >= where.since)
    if where.until is not None:
        conditions.append(table.c.created_at < where.until)
    for name in _ATTRIBUTION:
        value = getattr(where, name)
        if value is not None:
            conditions.append(table.c[name] == value)
    return conditions


_NULL = sa.cast(sa.null(), sa.Text)


def _day(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    # UTC calendar days. SQLite stores UTC text; PostgreSQL's would follow the session's time zone otherwise.
    if dialect == "postgresql":
        return sa.cast(sa.cast(sa.func.timezone(sa.literal_column("'UTC'"), column), sa.Date), sa.Text)
    return sa.func.date(column)


def _group_keys(group_by: Group | None, dialect: str) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """The group key's expression over ``request_log`` and over ``ledger_entries``."""
    log, ledger = request_log.c, ledger_entries.c
    match group_by:
        case None:
            return _NULL, _NULL
        case "agent" | "run" | "session" | "department" | "key":
            return log[f"{group_by}_id"], ledger[f"{group_by}_id"]
        case "model":  # as resolved, provider/model: an alias or a router names no price
            return log.provider + sa.literal_column("'/'") + log.upstream_model, _NULL
        case "provider":
            return log.provider, _NULL
        case "vendor":  # who was paid: the model's provider, or the tool's vendor
            return log.provider, ledger.vendor
        case "tool":
            return _NULL, ledger.tool
        case "endpoint":
            return _NULL, ledger.endpoint
        case "day":
            return _day(log.created_at, dialect), _day(ledger.created_at, dialect)


class LedgerStore:
    """Ledger entries and ledger totals of one store.

    Usage::

        ledger = LedgerStore(db)
        entry, created = await ledger.append(LedgerEntry(id=new_entry_id(), ...))
        by_agent = await ledger.totals("ws_1", group_by="agent", where=LedgerFilter(since=start))
        spent = await ledger.spent("ws_1", LedgerFilter(agent_id="a1"))
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, entry: LedgerEntry) -> tuple[LedgerEntry, bool]:
        """Store ``entry``, or return the entry already stored under its idempotency key (and ``False``)."""
        values = dataclasses.asdict(entry)
        async with self._db.engine.begin() as connection:
            if entry.idempotency_key is None:
                await connection.execute(ledger_entries.insert().values(values))
                return entry, True
            insert = (
                self._db.insert(ledger_entries)
                .values(values)
                .on_conflict_do_nothing(
                    index_elements=[ledger_entries.c.workspace_id, ledger_entries.c.idempotency_key]
                )
            )
            if (await connection.execute(insert)).rowcount == 1:
                return entry, True
            query = sa.select(ledger_entries).where(
                ledger_entries.c.workspace_id == entry.workspace_id,
                ledger_entries.c.idempotency_key == entry.idempotency_key,
            )
            row = (await connection.execute(query)).one()
        return _entry(row), False

    async def entries(
        self, workspace_id: str, where: LedgerFilter = LedgerFilter(), *, limit: int = 100
    ) -> list[LedgerEntry]:
        """Ledger entries (not model costs), newest first."""
        query = (
            sa.select(ledger_entries)
            .where(*_where(ledger_entries, workspace_id, where))
            .order_by(ledger_entries.c.created_at.desc(), ledger_entries.c.id.desc())
            .limit(limit)
        )
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_entry(row) for row in rows]

    async def sums(
        self, workspace_id: str, *, group_by: Group | None = None, where: LedgerFilter = LedgerFilter()
    ) -> list[tuple[str | None, Kind, Nano, int]]:
        """``(group key, kind, amount, count)`` over request-log costs and ledger entries: THE ledger query."""
        log_key, ledger_key = _group_keys(group_by, self._db.dialect)
        group: sa.ColumnElement[Any] = sa.literal_column("group_key")
        model_costs = (
            sa.select(
                log_key.label("group_key"),
                sa.literal_column("'model_cost'").label("kind"),
                sa.cast(sa.func.coalesce(sa.func.sum(request_log.c.cost_nano), 0), sa.BigInteger).label("amount"),
                sa.func.count().label("n"),
            )
            .where(*_where(request_log, workspace_id, where), request_log.c.endpoint != MCP_TOOL_ENDPOINT)
            .group_by(group)
        )
        others = (
            sa.select(
                ledger_key.label("group_key"),
                ledger_entries.c.kind,
                sa.cast(sa.func.sum(ledger_entries.c.amount_nano), sa.BigInteger).label("amount"),
                sa.func.count().label("n"),
            )
            .where(*_where(ledger_entries, workspace_id, where))
            .group_by(group, ledger_entries.c.kind)
        )
        async with self._db.engine.connect() as connection:
            rows = (await connection.execute(sa.union_all(model_costs, others))).all()
        return [
            (None if key is None else str(key), cast(Kind, kind), int(amount), int(count))
            for key, kind, amount, count in rows
            if count
        ]

    async def totals(
        self, workspace_id: str, *, group_by: Group | None = None, where: LedgerFilter = LedgerFilter()
    ) -> dict[str | None, Totals]:
        return aggregate(await self.sums(workspace_id, group_by=group_by, where=where))

    async def spent(self, workspace_id: str, where: LedgerFilter = LedgerFilter()) -> Nano:
        """Everything counted against budgets (model, tool and payment spend, adjustments) in the window."""
        rows = await self.sums(workspace_id, where=where)
        return sum(amount for _, kind, amount, _ in rows if kind in BUDGET_KINDS)
