"""Throwaway databases for tests: a uniquely named PostgreSQL database, or a SQLite file under ``tmp_path``.

Plain functions rather than fixtures, so session-, module- and test-scoped fixtures can all share them. The
PostgreSQL server defaults to the local one on 127.0.0.1:5432; ``ALEPHANT_TEST_POSTGRES`` points elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
from sqlalchemy.engine import make_url

__all__ = ["ADMIN_URL", "drop_postgres", "fresh_postgres_url", "sqlite_url"]

ADMIN_URL = os.environ.get("ALEPHANT_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
NAME_PREFIX = "alephant_t_"

T = TypeVar("T")


def _run(make: Callable[[], Awaitable[T]]) -> T:
    # asyncio.run refuses to nest inside a running loop (async fixtures and tests call these too), and
    # must not replace the test runner's loop: a worker thread has a loop of its own.
    async def call() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, call()).result()


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def fresh_postgres_url() -> str:
    """Create an empty database ``alephant_t_<hex>`` and return its URL."""
    name = NAME_PREFIX + secrets.token_hex(6)
    _run(lambda: _admin(f'CREATE DATABASE "{name}"'))
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres(url: str) -> None:
    """Drop a database made by ``fresh_postgres_url``, even with connections still open to it."""
    name = make_url(url).database or ""
    if not name.startswith(NAME_PREFIX):  # never drop something a test did not create
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    _run(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alephant.db'}"
