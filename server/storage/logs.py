"""The request log: a writer that never holds up a request, and the queries the CLI and API read it with.

``LogWriter.submit`` puts a row in a bounded in-memory queue; one background task writes the queue in batches
(COPY on PostgreSQL, one executemany on SQLite). Nothing is lost when the database is down or the queue is
full: rows go to an append-only spool file, replayed (duplicates ignored) by the next write that succeeds. A
row whose values the database refuses (a number out of range, text PostgreSQL cannot hold) is set aside in a
rejected file instead, so that one bad row cannot hold the rest of the log in the spool forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import operator
import os
import shutil
import sqlite3
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from server.storage.database import Database
from server.storage.records import LogRow
from server.storage.schema import as_utc, request_log

__all__ = ["LogQuery", "LogWriter", "refuses_values"]

logger = logging.getLogger(__name__)

ROW_FIELDS = tuple(field.name for field in dataclasses.fields(LogRow))
assert tuple(request_log.columns.keys()) == ROW_FIELDS, "request_log columns must follow LogRow's fields"

SPOOL_FILE = "request_log.spool.jsonl"
REJECTED_FILE = "request_log.rejected.jsonl"
REPLAY_CHUNK_ROWS = 5_000

_row_values = operator.attrgetter(*ROW_FIELDS)
_PROPERTIES = ROW_FIELDS.index("properties")
_CREATED_AT = ROW_FIELDS.index("created_at")


def _params(row: LogRow) -> dict[str, Any]:
    return dict(zip(ROW_FIELDS, _row_values(row), strict=True))


def _copy_record(row: LogRow) -> tuple[Any, ...]:
    values = list(_row_values(row))
    # SQLAlchemy's asyncpg codec for JSONB takes text; COPY bypasses SQLAlchemy's own serialisation.
    values[_PROPERTIES] = orjson.dumps(values[_PROPERTIES]).decode()
    # asyncpg would read a naive datetime as local time; the SQLAlchemy path reads it as UTC, so must COPY.
    values[_CREATED_AT] = as_utc(values[_CREATED_AT])
    return tuple(values)


def _to_line(row: LogRow) -> bytes:
    try:
        return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        # orjson refuses integers beyond 64 bits; such a row is bad, but it is still kept, not lost.
        values = {name: getattr(row, name) for name in ROW_FIELDS}
        return json.dumps(values, default=_json_default, ensure_ascii=False).encode() + b"\n"


def _json_default(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


# SQLite's default SQLITE_MAX_VARIABLE_NUMBER: 32,766 since 3.32, 999 before.
_SQLITE_MAX_VARIABLES = 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999
# A power of two: every insert is one of a handful of statement sizes (see ``_sqlite_chunks``).
_SQLITE_ROWS_PER_INSERT = 1 << (min(256, _SQLITE_MAX_VARIABLES // len(ROW_FIELDS)).bit_length() - 1)
_SQLITE_ROW = f"({', '.join('?' for _ in ROW_FIELDS)})"


def _sqlite_chunks(rows: int) -> Iterator[int]:
    """Sizes adding up to ``rows``, each a power of two, largest first (500: 256, 128, 64, 32, 16, 4).

    sqlite3 keeps up to 128 prepared statements per connection, and a statement of n rows holds 30n parameters:
    with one statement per batch size (1 to 500) the cache grew by the megabyte, for ever-rarer sizes (RSS
    +80 MB over 150k requests at 5k req/s). Powers of two are nine statements at most.
    """
    while rows >= _SQLITE_ROWS_PER_INSERT:
        yield _SQLITE_ROWS_PER_INSERT
        rows -= _SQLITE_ROWS_PER_INSERT
    while rows:
        size = 1 << (rows.bit_length() - 1)
        yield size
        rows -= size


@functools.lru_cache(maxsize=16)
def _sqlite_insert(rows: int) -> str:
    return f"INSERT INTO {request_log.name} ({', '.join(ROW_FIELDS)}) VALUES " + ", ".join([_SQLITE_ROW] * rows)


def _sqlite_record(row: LogRow) -> tuple[Any, ...]:
    values = list(_row_values(row))
    values[_PROPERTIES] = orjson.dumps(values[_PROPERTIES]).decode()
    # The text form SQLAlchemy's SQLite DATETIME stores and parses back (UTC, as UTCDateTime does).
    values[_CREATED_AT] = as_utc(values[_CREATED_AT]).strftime("%Y-%m-%d %H:%M:%S.%f")
    return tuple(values)


def _from_line(line: bytes) -> LogRow:
    # The standard library on purpose: orjson reads integers beyond 64 bits as floats, which would slip a bad
    # row past the database as a REAL on SQLite instead of letting it be refused.
    values = json.loads(line)
    values["created_at"] = datetime.fromisoformat(values["created_at"])
    return LogRow(**values)


def _describe(exc: BaseException) -> str:
    # The driver's error, first line only: SQLAlchemy's wrapper adds the statement, which says nothing new.
    cause = getattr(exc, "orig", None) or exc
    first_line = str(cause).partition("\n")[0]
    return f"{type(cause).__name__}: {first_line[:200]}"


_VALUE_ERRORS = (
    sa.exc.DataError,
    sa.exc.IntegrityError,
    sqlite3.DataError,  # the SQLite fast path uses the driver directly
    sqlite3.IntegrityError,
    ValueError,
    TypeError,
    OverflowError,
)


def refuses_values(exc: BaseException) -> bool:
    """Whether a write failed because of the rows' values, which no retry fixes, rather than the database.

    Out-of-range numbers, wrong types, text PostgreSQL cannot store (SQLSTATE class 22) and constraint
    violations (class 23) are the rows' fault; anything else (refused connections, a missing table, a full
    disk) is the database's, and the rows wait in the spool for it to recover.
    """
    error: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's error, the adapted DBAPI error, the driver's error
        if error is None:
            return False
        if isinstance(error, _VALUE_ERRORS):
            return True
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(("22", "23")):
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False


class _Spool:
    """JSON lines of rows the database has not taken yet, in ``spool_dir``; one writer process per directory.

    Every method is synchronous on purpose: an append (from ``submit``) and the removal of replayed lines
    then never interleave on the event loop, so a row appended during a replay is never cut away with it.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / SPOOL_FILE
        self.rejected_path = directory / REJECTED_FILE
        self._end_torn_line()

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def append(self, rows: Iterable[LogRow]) -> None:
        self._append(self.path, b"".join(_to_line(row) for row in rows))

    def reject(self, lines: Iterable[bytes]) -> None:
        self._append(self.rejected_path, b"".join(lines))

    def read(self, offset: int, end: int, limit: int) -> tuple[list[LogRow], list[bytes], int]:
        """Up to ``limit`` rows from byte ``offset`` to ``end``, the unreadable lines, and where it stopped."""
        rows: list[LogRow] = []
        bad: list[bytes] = []
        with self.path.open("rb") as spool:
            spool.seek(offset)
            while offset < end and len(rows) < limit:
                line = spool.readline()
                if not line:
                    break
                offset += len(line)
                try:
                    rows.append(_from_line(line))
                except (ValueError, TypeError, KeyError):
                    bad.append(line if line.endswith(b"\n") else line + b"\n")
        return rows, bad, offset

    def consume(self, offset: int) -> None:
        """Drop the first ``offset`` bytes, keeping whatever was appended after they were read."""
        if offset <= 0:
            return
        if offset >= self.size():
            self.path.unlink(missing_ok=True)
            return
        partial = self.path.with_name(self.path.name + ".tmp")
        with self.path.open("rb") as source, partial.open("wb") as target:
            source.seek(offset)
            shutil.copyfileobj(source, target)
        os.replace(partial, self.path)

    def _end_torn_line(self) -> None:
        # A crash mid-append leaves a line without its newline; close it so the next append stays readable.
        try:
            with self.path.open("rb+") as spool:
                spool.seek(-1, os.SEEK_END)
                if spool.read(1) != b"\n":
                    spool.write(b"\n")
        except OSError:  # no spool yet, or an empty one
            pass

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as target:
            target.write(data)


class _Unstored(Exception):
    """Rows could not be stored and the fault looks like the database's, so they stay spooled."""


class LogWriter:
    """Batches request-log rows into the database without ever blocking the request that produced them.

    ``submit`` must be called on the event loop's thread. Counters, for metrics: ``written`` (rows handed to
    the database, replayed ones included), ``spooled`` (rows put in the spool), ``rejected`` (rows the
    database refused, kept in the rejected file), ``dropped`` (rows lost: the spool could not be written).

    Usage::

        writer = LogWriter(db, spool_dir=Path(".alephant/spool"))
        writer.start()
        writer.submit(row)      # from the request path
        await writer.stop()     # at shutdown: everything is in the database or the spool
    """

    def __init__(
        self,
        db: Database,
        *,
        spool_dir: Path,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.05,
    ) -> None:
        self._db = db
        self._spool = _Spool(Path(spool_dir))
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._pending: deque[LogRow] = deque()
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()  # one writer at a time: the spool's replay bookkeeping relies on it
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._overflowing = False
        self.written = 0
        self.spooled = 0
        self.rejected = 0
        self.dropped = 0

    def submit(self, row: LogRow) -> None:
        """Queue a row; when the queue is full (or the writer stopped) it goes to the spool instead."""
        if self._stopping or len(self._pending) >= self._max_queue:
            if not self._overflowing:
                self._overflowing = True
                logger.warning("request log: queue full or writer stopped; spooling rows to %s", self._spool.path)
            self._spool_rows((row,))
            return
        self._pending.append(row)
        self._wakeup.set()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="alephant-log-writer")

    async def stop(self) -> None:
        """Stop the background task and flush what it left; rows submitted afterwards go to the spool."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.wait([self._task])
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued now, replaying the spool first; what the database will not take is spooled."""
        if not self._pending:
            if self._spool.size():
                await self._write([])
            return
        while self._pending:
            await self._write(self._take_batch())
        self._overflowing = False

    async def sync(self) -> None:
        """Return once every row submitted before the call is stored (or spooled): read-your-writes.

        The read routes (a run's trace, log search, spend) call it, so a client that reads right after its
        request sees that request on this replica instead of racing the batch timer. Batches the background
        task took before this call are written under ``_lock``, which is fair, so waiting for it covers them.
        """
        await self.flush()
        async with self._lock:
            pass

    async def _run(self) -> None:
        while not self._stopping:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._stopping:
                return
            if len(self._pending) < self._batch_size:
                await asyncio.sleep(self._flush_interval)  # one sleep per batch lets the batch fill up
            await self.flush()

    def _take_batch(self) -> list[LogRow]:
        take = min(self._batch_size, len(self._pending))
        return [self._pending.popleft() for _ in range(take)]

    async def _write(self, batch: list[LogRow]) -> None:
        async with self._lock:
            try:
                await self._replay_spool()
                if batch:
                    await self._store(batch, fast=True)
            except asyncio.CancelledError:
                self._spool_rows(batch)
                raise
            except _Unstored as exc:
                self._spool_rows(batch)
                logger.warning("request log: database unavailable (%s); %d more rows spooled", exc, len(batch))
            except Exception:  # a bug, not an outage: keep the rows and the writer alive, and say so loudly
                self._spool_rows(batch)
                logger.exception("request log: unexpected failure; %d more rows spooled", len(batch))

    async def _replay_spool(self) -> None:
        # Only what is in the file now: rows spooled during the replay wait for the next write.
        end = self._spool.size()
        offset = 0
        try:
            while offset < end:
                rows, bad, offset_after = self._spool.read(offset, end, REPLAY_CHUNK_ROWS)
                if bad:
                    self._reject_lines(bad, reason="unreadable spool lines")
                if rows:
                    await self._store(rows, fast=False)
                offset = offset_after
        finally:
            self._spool.consume(offset)

    async def _store(self, rows: Sequence[LogRow], *, fast: bool) -> None:
        """Store rows, or raise ``_Unstored`` when the database is at fault; rows at fault are rejected."""
        try:
            if fast:
                await self._insert_fast(rows)
            else:
                await self._insert_new(rows)
        except Exception as exc:
            if not refuses_values(exc):
                raise _Unstored(_describe(exc)) from exc
            logger.warning("request log: database refused a batch (%s); isolating the bad rows", _describe(exc))
            await self._isolate(rows)
        else:
            self.written += len(rows)

    async def _isolate(self, rows: Sequence[LogRow]) -> None:
        refused: list[LogRow] = []
        try:
            for row in rows:
                try:
                    await self._insert_new((row,))
                except Exception as exc:
                    if not refuses_values(exc):
                        raise _Unstored(_describe(exc)) from exc
                    refused.append(row)
                else:
                    self.written += 1
        finally:
            if refused:
                self._reject_lines(
                    (_to_line(row) for row in refused),
                    reason="rows refused by the database",
                    ids=[row.request_id for row in refused],
                )

    async def _insert_fast(self, rows: Sequence[LogRow]) -> None:
        if self._db.dialect == "postgresql":
            records = [_copy_record(row) for row in rows]
            async with self._db.engine.connect() as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                await driver.copy_records_to_table(request_log.name, records=records, columns=ROW_FIELDS)
        else:
            # One multi-row INSERT per chunk, through the driver. executemany would step SQLite once per row in
            # aiosqlite's thread, re-taking the GIL from a busy event loop each time (measured: 500 rows took
            # ~900 ms under 3k req/s, against ~15 ms idle); one statement takes it once.
            async with self._db.engine.begin() as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None
                start = 0
                for size in _sqlite_chunks(len(rows)):
                    values = [value for row in rows[start : start + size] for value in _sqlite_record(row)]
                    await driver.execute(_sqlite_insert(size), values)
                    start += size

    async def _insert_new(self, rows: Sequence[LogRow]) -> None:
        """Insert rows, skipping request ids already present: a replay may repeat rows already stored."""
        insert = self._db.insert(request_log).on_conflict_do_nothing(index_elements=[request_log.c.request_id])
        async with self._db.engine.begin() as connection:
            await connection.execute(insert, [_params(row) for row in rows])

    def _spool_rows(self, rows: Sequence[LogRow]) -> None:
        if not rows:
            return
        try:
            self._spool.append(rows)
        except Exception:
            self.dropped += len(rows)
            logger.exception("request log: cannot write the spool %s; %d rows lost", self._spool.path, len(rows))
        else:
            self.spooled += len(rows)

    def _reject_lines(self, lines: Iterable[bytes], *, reason: str, ids: Sequence[str] = ()) -> None:
        kept = list(lines)
        try:
            self._spool.reject(kept)
        except Exception:
            self.dropped += len(kept)
            logger.exception("request log: cannot write %s; %d rows lost", self._spool.rejected_path, len(kept))
            return
        self.rejected += len(kept)
        shown = f" (request ids {', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})" if ids else ""
        logger.error("request log: %s%s; %d kept in %s", reason, shown, len(kept), self._spool.rejected_path)


class LogQuery:
    """Reads the request log for the CLI, the admin API and tests; never used on the request path."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def tail(self, *, limit: int = 20, workspace_id: str | None = None) -> list[LogRow]:
        """The newest rows first."""
        query = sa.select(request_log).order_by(request_log.c.created_at.desc(), request_log.c.request_id.desc())
        if workspace_id is not None:
            query = query.where(request_log.c.workspace_id == workspace_id)
        return await self._rows(query.limit(limit))

    async def get(self, request_id: str) -> LogRow | None:
        rows = await self._rows(sa.select(request_log).where(request_log.c.request_id == request_id))
        return rows[0] if rows else None

    async def count(self, **filters: Any) -> int:
        """Rows whose columns equal the given values (``None`` matches NULL): ``count(key_id="key_1")``."""
        unknown = sorted(set(filters) - set(ROW_FIELDS))
        if unknown:
            raise ValueError(f"unknown request_log columns: {', '.join(unknown)}")
        conditions = [request_log.c[name] == value for name, value in filters.items()]
        query = sa.select(sa.func.count()).select_from(request_log).where(*conditions)
        async with self._db.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def _rows(self, query: sa.Select[Any]) -> list[LogRow]:
        async with self._db.engine.connect() as connection:
            result = await connection.execute(query)
            return [LogRow(**dict(row._mapping)) for row in result]
