"""Stored Responses answers survive a store that is briefly unavailable: the writer retries instead of dropping.

A real PostgreSQL database is made unreachable (connections refused, the open ones terminated) while an answer
is remembered, then reachable again; the answer lands. A store that never comes back within the shutdown
timeout costs the answers it held, and the log names them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from server.storage import Database, ResponseStore, StoredResponse
from server.stored_responses import StoredResponses
from tests._databases import ADMIN_URL, drop_postgres, fresh_postgres_url

pytestmark = pytest.mark.anyio


@pytest.fixture
async def database() -> AsyncIterator[tuple[Database, str]]:
    url = fresh_postgres_url()
    db = Database(url)
    await db.open()
    await db.migrate()
    try:
        yield db, make_url(url).database or ""
    finally:
        await db.close()
        await _connections(make_url(url).database or "", allowed=True)
        drop_postgres(url)


async def _connections(name: str, *, allowed: bool) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await admin.close()


def _answer(n: int) -> StoredResponse:
    return StoredResponse(
        id=f"resp_{n:04d}",
        workspace_id="default",
        key_id=None,
        request_id=f"req_{n:04d}",
        created_at=datetime.now(UTC),
        response={"id": f"resp_{n:04d}", "output": []},
        items=[],
    )


async def test_an_answer_remembered_while_the_store_is_down_lands_when_it_is_back(
    database: tuple[Database, str],
) -> None:
    db, name = database
    store = ResponseStore(db)
    stored = StoredResponses(store, retry_delay=0.1)
    stored.start()
    await _connections(name, allowed=False)
    stored.remember(_answer(1))
    await asyncio.sleep(0.5)  # a few failed attempts
    assert await stored.recall("resp_0001", workspace_id="default") is not None, "memory serves it meanwhile"
    await _connections(name, allowed=True)
    for _ in range(100):
        if await store.get("resp_0001", workspace_id="default") is not None:
            break
        await asyncio.sleep(0.05)
    assert await store.get("resp_0001", workspace_id="default") is not None
    await stored.stop()


async def test_a_store_gone_past_shutdown_costs_the_answers_and_says_which(
    database: tuple[Database, str], caplog: pytest.LogCaptureFixture
) -> None:
    db, name = database
    stored = StoredResponses(ResponseStore(db), retry_delay=0.1, stop_timeout=0.5)
    stored.start()
    await _connections(name, allowed=False)
    for n in (2, 3):
        stored.remember(_answer(n))
    await asyncio.sleep(0.2)
    with caplog.at_level(logging.ERROR, logger="alephant.responses"):
        await asyncio.wait_for(stored.stop(), timeout=5)
    assert "2 answers were not stored: resp_0002, resp_0003" in caplog.text
