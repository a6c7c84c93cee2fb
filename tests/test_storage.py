"""Storage layer on both dialects: migrations, keys, and the request log's writer, spool and queries.

Each test runs against a SQLite file and a fresh PostgreSQL database; tables are emptied before every test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.storage import Database, KeyStore, LogQuery, LogRow, LogWriter, hash_secret, new_secret
from server.storage import keys as keys_module
from server.storage import logs as logs_module
from server.storage.schema import metadata
from tests._databases import sqlite_url

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    async with Database(database_url) as database:
        await database.migrate()
        async with database.engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(table.delete())
        yield database


@pytest.fixture
async def down_db(db: Database, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of the same dialect that cannot be reached, with a password that must never be shown."""
    if db.dialect == "postgresql":
        url = f"postgresql://alephant:hunter2@127.0.0.1:{_free_port()}/nowhere"
        async with Database(url) as database:
            yield database
        return
    folder = tmp_path / "vanished"
    async with Database(sqlite_url(folder)) as database:
        shutil.rmtree(folder)  # SQLite cannot open a file in a directory that is gone
        yield database


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def make_row(n: int, **changes: Any) -> LogRow:
    """A row with every field set to something other than its default."""
    row = LogRow(
        request_id=f"req_{n:06d}",
        created_at=datetime(2026, 11, 26, 12, 0, tzinfo=timezone(timedelta(hours=2))) + timedelta(seconds=n),
        endpoint="/v1/chat/completions",
        key_id=f"key_{n % 3}",
        workspace_id=f"ws_{n % 2}",
        agent_id=f"agent_{n % 5}",
        run_id=f"run_{n % 7}",
        session_id=f"sess_{n}",
        properties={"team": "search", "n": str(n), "ünïcode": "✓"},
        model="gpt-4o-mini",
        provider="openai",
        upstream_model="gpt-4o-mini-2024-07-18",
        stream=n % 2 == 0,
        status="error",
        http_status=502,
        error_code="upstream_error",
        error_message=f"bad gateway {n}",
        prompt_tokens=3_000_000_000 + n,  # beyond 32 bits
        completion_tokens=20 + n,
        cached_tokens=5,
        reasoning_tokens=7,
        latency_ms=12.345 + n,
        ttfb_ms=3.25,
        cost_nano=9_000_000_000_000 + n,
        price_source="genai-prices",
    )
    return dataclasses.replace(row, **changes)


async def all_values(db: Database) -> list[str]:
    async with db.engine.connect() as connection:
        return [
            repr(value)
            for table in metadata.sorted_tables
            for row in (await connection.execute(sa.select(table))).all()
            for value in row
        ]


# -- database and migrations ------------------------------------------------------------------------------------


async def test_migrate_twice_is_idempotent(db: Database) -> None:
    await db.migrate()
    await db.migrate()
    async with db.engine.connect() as connection:
        versions = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars().all()
        tables = await connection.run_sync(lambda sync: set(sa.inspect(sync).get_table_names()))
    from alembic.script import ScriptDirectory

    from server.storage import alembic_config
    from server.storage.database import HEAD_REVISION
    from server.storage.schema import metadata

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head == HEAD_REVISION, "the fast start-up check (Database._at_head) must know the newest revision"
    assert versions == [head], "one head, applied"
    assert tables == {"alembic_version", *metadata.tables}


async def test_migrated_schema_matches_schema_module(db: Database) -> None:
    def diffs(target: sa.MetaData) -> Any:
        def compare(connection: sa.Connection) -> Any:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, target)

        return compare

    altered = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(altered)
    altered.tables["request_log"].append_column(sa.Column("extra", sa.Text))
    async with db.engine.connect() as connection:
        assert await connection.run_sync(diffs(metadata)) == []
        assert await connection.run_sync(diffs(altered))  # the comparison does see a difference
    assert tuple(metadata.tables["request_log"].columns.keys()) == tuple(
        field.name for field in dataclasses.fields(LogRow)
    )


async def test_ping_pragmas_and_url_forms(db: Database, down_db: Database) -> None:
    await db.ping()
    if db.dialect == "sqlite":
        async with db.engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 5000
    with pytest.raises(Exception) as caught:
        await down_db.ping()
    assert "hunter2" not in str(caught.value) and "hunter2" not in repr(down_db)
    for url, driver in [
        ("sqlite:///a/b.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///a/b.db", "sqlite+aiosqlite"),
        ("postgresql://u:hunter2@h/d", "postgresql+asyncpg"),
        ("postgres://u:hunter2@h/d", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u:hunter2@h/d", "postgresql+asyncpg"),
    ]:
        database = Database(url)
        assert database.display_url.startswith(driver + "://") and "hunter2" not in repr(database)
        assert database.dialect == driver.split("+")[0]
    for bad in ["mysql://root:hunter2@h/d", "postgresql+psycopg://u:hunter2@h/d", "root:hunter2@h/d"]:
        with pytest.raises(ValueError, match="accepted forms") as refused:
            Database(bad)
        assert "hunter2" not in str(refused.value)
    assert Database("postgres://u@h/d?sslmode=require").display_url == "postgresql+asyncpg://u@h/d?ssl=require"
    with pytest.raises(ValueError, match="'mysql'"):
        Database("mysql://h/d")


# -- keys --------------------------------------------------------------------------------------------------------


async def test_key_lifecycle(db: Database) -> None:
    keys = KeyStore(db)
    assert await keys.version() == 0
    expires = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    record, secret = await keys.create(
        name="ci", workspace_id="team-a", models=["openai/*", "mock/mock-1"], expires_at=expires, metadata={"o": 1}
    )
    other, _ = await keys.create(name="other")
    assert await keys.version() == 2
    assert re.fullmatch(r"alk_[A-Za-z0-9_-]{40}", secret)
    assert record.id.startswith("key_") and len(record.id) == 20
    assert (record.prefix, record.key_hash) == (secret[:12], hash_secret(secret))
    assert record.expires_at == expires and record.expires_at.utcoffset() == timedelta(0)

    fetched = await keys.get(record.id)
    assert fetched == record and fetched.models == ("openai/*", "mock/mock-1")
    assert fetched.created_at.tzinfo is not None and fetched.created_at.utcoffset() == timedelta(0)
    assert await keys.get("key_missing") is None
    assert [k.id for k in await keys.list()] == [record.id, other.id]
    assert [k.id for k in await keys.list(workspace_id="team-a")] == [record.id]

    revoked = await keys.revoke(record.id)
    assert revoked is not None and revoked.revoked_at is not None and revoked.revoked_at.utcoffset() == timedelta(0)
    assert await keys.version() == 3
    assert await keys.get(record.id) == revoked
    assert await keys.revoke(record.id) == revoked  # idempotent, keeps the first timestamp
    assert await keys.version() == 3
    assert await keys.revoke("key_missing") is None
    assert [k.id for k in await keys.active()] == [other.id]
    assert [k.id for k in await keys.list(workspace_id="team-a")] == []
    assert [k.id for k in await keys.list(workspace_id="team-a", include_revoked=True)] == [record.id]
    with pytest.raises(TypeError):
        await keys.create(name="oops", models="openai/*")


async def test_expired_keys_stay_active(db: Database) -> None:
    keys = KeyStore(db)
    expired, _ = await keys.create(name="old", expires_at=datetime.now(UTC) - timedelta(days=1))
    assert [k.id for k in await keys.active()] == [expired.id]


async def test_revoke_by_prefix_and_ambiguous_prefix(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = KeyStore(db)
    single, secret = await keys.create(name="single")
    revoked = await keys.revoke(secret[:12])
    assert revoked is not None and revoked.id == single.id and revoked.revoked_at is not None

    twins = iter(["alk_TWINtwin" + c * 32 for c in "ab"])
    monkeypatch.setattr(keys_module, "new_secret", lambda: next(twins))
    first, _ = await keys.create(name="twin-a")
    second, _ = await keys.create(name="twin-b")
    assert first.prefix == second.prefix == "alk_TWINtwin"
    version = await keys.version()
    with pytest.raises(ValueError, match="2 keys") as ambiguous:
        await keys.revoke("alk_TWINtwin")
    assert first.id in str(ambiguous.value) and second.id in str(ambiguous.value)
    assert {k.id for k in await keys.active()} == {first.id, second.id}
    assert await keys.version() == version
    by_id = await keys.revoke(second.id)
    assert by_id is not None and by_id.id == second.id
    assert [k.id for k in await keys.active()] == [first.id]


async def test_secret_is_never_stored(db: Database, database_url: str) -> None:
    keys = KeyStore(db)
    made = [await keys.create(name=f"k{i}", metadata={"note": "x"}) for i in range(3)]
    values = await all_values(db)
    for record, secret in made:
        assert not any(secret in value or secret[12:] in value for value in values)
        assert any(record.key_hash in value for value in values)
    if db.dialect == "sqlite":
        await db.close()  # checkpoint the WAL so the file holds everything
        path = Path(sa.make_url(database_url).database or "")
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert not any(secret[12:].encode() in raw for _, secret in made)
    assert new_secret() != new_secret()


# -- request log -------------------------------------------------------------------------------------------------


async def test_log_round_trip(db: Database, tmp_path: Path) -> None:
    rows = [make_row(n) for n in range(40)] + [make_row(99, key_id=None, error_code=None, ttfb_ms=None)]
    writer = LogWriter(db, spool_dir=tmp_path)
    for row in rows:
        writer.submit(row)
    await writer.flush()
    assert (writer.written, writer.spooled, writer.rejected) == (41, 0, 0)

    query = LogQuery(db)
    assert await query.count() == 41
    assert await query.count(key_id="key_1") == sum(row.key_id == "key_1" for row in rows)
    assert await query.count(key_id=None) == 1
    assert await query.count(workspace_id="ws_0", stream=True) == 20
    for row in rows:
        stored = await query.get(row.request_id)
        assert stored == row
        assert stored is not None and stored.created_at.utcoffset() == timedelta(0)
        assert isinstance(stored.cost_nano, int) and isinstance(stored.prompt_tokens, int)
    assert await query.get("req_missing") is None

    newest = sorted(rows, key=lambda row: row.created_at, reverse=True)
    assert await query.tail(limit=5) == newest[:5]
    assert await query.tail(limit=3, workspace_id="ws_1") == [r for r in newest if r.workspace_id == "ws_1"][:3]
    with pytest.raises(ValueError, match="no_such_column"):
        await query.count(no_such_column=1)


async def test_sync_waits_for_the_batch_in_flight(db: Database, tmp_path: Path) -> None:
    """``sync`` (the read routes' read-your-writes) returns only when every row submitted before it is stored:
    the batch the background task already took and is writing, and those still queued."""
    writer = LogWriter(db, spool_dir=tmp_path, batch_size=2, flush_interval=0.001)
    insert_fast = writer._insert_fast
    started = asyncio.Event()

    async def slow(rows: Any) -> None:
        started.set()
        await asyncio.sleep(0.2)  # the background task holds its taken batch while our sync starts
        await insert_fast(rows)

    writer._insert_fast = slow  # type: ignore[method-assign]
    writer.start()
    writer.submit(make_row(1))
    writer.submit(make_row(2))
    await started.wait()
    await writer.sync()  # nothing is queued: only the batch in flight is left to wait for
    assert await LogQuery(db).count() == 2
    writer.submit(make_row(3))
    await writer.sync()
    assert await LogQuery(db).count() == 3
    await writer.stop()


async def test_large_batches_through_the_background_task(db: Database, tmp_path: Path) -> None:
    writer = LogWriter(db, spool_dir=tmp_path, batch_size=500)
    batches: list[int] = []
    insert_fast = writer._insert_fast

    async def counting(rows: Any) -> None:
        batches.append(len(rows))
        await insert_fast(rows)

    writer._insert_fast = counting  # type: ignore[method-assign]
    writer.start()
    for n in range(2_500):
        writer.submit(make_row(n))
    await writer.stop()
    assert await LogQuery(db).count() == 2_500
    assert (writer.written, writer.spooled) == (2_500, 0)
    assert batches == [500] * 5

    big = LogWriter(db, spool_dir=tmp_path, batch_size=5_000)
    for n in range(2_500, 4_000):
        big.submit(make_row(n))
    await big.flush()
    assert await LogQuery(db).count() == 4_000


def test_sqlite_batches_use_a_handful_of_statement_sizes() -> None:
    # sqlite3 caches a prepared statement per distinct SQL text; one per batch size grew RSS without end.
    sizes = set()
    for rows in range(2_000):
        chunks = list(logs_module._sqlite_chunks(rows))
        assert sum(chunks) == rows and chunks == sorted(chunks, reverse=True)
        sizes.update(chunks)
    assert len(sizes) <= 9 and all(size & (size - 1) == 0 for size in sizes)


async def test_batches_of_every_size_are_written_whole(db: Database, tmp_path: Path) -> None:
    writer = LogWriter(db, spool_dir=tmp_path, batch_size=1_000)
    written = 0
    for size in (1, 3, 255, 256, 257, 511, 777):
        for n in range(size):
            writer.submit(make_row(written + n))
        await writer.flush()
        written += size
        assert await LogQuery(db).count() == written


async def test_spool_when_down_then_replay(
    db: Database, down_db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    early = [make_row(n) for n in range(30)]
    down = LogWriter(down_db, spool_dir=spool, batch_size=10)
    down.start()
    for row in early[:20]:
        down.submit(row)
    await down.stop()
    for row in early[20:]:  # after stop: straight to the spool
        down.submit(row)
    assert (down.written, down.spooled) == (0, 30)
    assert len((spool / "request_log.spool.jsonl").read_bytes().splitlines()) == 30
    assert "spooled" in caplog.text and "hunter2" not in caplog.text

    # Ten of the spooled rows did reach the database (a commit whose answer was lost): no duplicates on replay.
    already = LogWriter(db, spool_dir=tmp_path / "other")
    for row in early[:10]:
        already.submit(row)
    await already.flush()

    late = [make_row(n) for n in range(100, 120)]
    up = LogWriter(db, spool_dir=spool)
    for row in late:
        up.submit(row)
    await up.flush()
    query = LogQuery(db)
    assert await query.count() == 50
    for row in early + late:
        assert await query.get(row.request_id) == row
    assert not (spool / "request_log.spool.jsonl").exists()
    assert (up.written, up.spooled) == (50, 0)


async def test_full_queue_spools_instead_of_blocking(db: Database, tmp_path: Path) -> None:
    writer = LogWriter(db, spool_dir=tmp_path, max_queue=10)
    started = time.perf_counter()
    for n in range(25):
        writer.submit(make_row(n))
    assert time.perf_counter() - started < 0.5
    assert writer.spooled == 15
    assert await LogQuery(db).count() == 0  # nothing written before a flush or the task
    await writer.flush()
    assert await LogQuery(db).count() == 25
    assert writer.written == 25


async def test_rows_the_database_refuses_are_set_aside(db: Database, tmp_path: Path) -> None:
    writer = LogWriter(db, spool_dir=tmp_path)
    poison = make_row(5, prompt_tokens=2**70)  # fits no BIGINT
    for row in [*(make_row(n) for n in range(5)), poison, *(make_row(n) for n in range(6, 10))]:
        writer.submit(row)
    await writer.flush()
    query = LogQuery(db)
    assert await query.count() == 9 and await query.get(poison.request_id) is None
    assert (writer.written, writer.rejected, writer.spooled) == (9, 1, 0)
    assert poison.request_id in (tmp_path / "request_log.rejected.jsonl").read_text()

    # A bad row alone in its batch (here a NULL the schema forbids) is rejected too, not mistaken for an outage.
    writer.submit(dataclasses.replace(poison, request_id="req_lone", prompt_tokens=0, endpoint=None))  # type: ignore[arg-type]
    await writer.flush()
    assert (writer.written, writer.rejected, writer.spooled) == (9, 2, 0)
    assert "req_lone" in (tmp_path / "request_log.rejected.jsonl").read_text()
    assert not (tmp_path / "request_log.spool.jsonl").exists()


async def test_torn_spool_line_is_set_aside(db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool_file = tmp_path / "request_log.spool.jsonl"
    with caplog.at_level(logging.ERROR):
        spool_file.write_bytes(b'{"request_id": "req_torn", "crea')  # a crash mid-append
        writer = LogWriter(db, spool_dir=tmp_path, max_queue=0)
        writer.submit(make_row(1))  # queue of size 0: spooled right after the torn line
        await writer.flush()
    assert await LogQuery(db).count() == 1
    assert writer.rejected == 1 and "req_torn" in (tmp_path / "request_log.rejected.jsonl").read_text()
    assert "unreadable spool lines" in caplog.text
