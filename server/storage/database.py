"""One handle on the database, whichever dialect: URL normalisation, engine lifecycle, migrations.

The embedded default is a SQLite file (aiosqlite); production is PostgreSQL (asyncpg). Callers hand over
the URL they were configured with, sync-driver spelling included, and get the async driver. The URL's
password never appears in a message or repr: the URL comes from configuration that often embeds it.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "Database", "DialectName", "alembic_config"]

DialectName = Literal["sqlite", "postgresql"]

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Revisions are numbered like their files (0001_initial.py has revision "0001", each down to the one before),
# so the newest is known without loading Alembic; ``test_storage`` checks it against Alembic's own head.
HEAD_REVISION = max(path.name[:4] for path in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
SQLITE_BUSY_TIMEOUT_MS = 5_000
# Serialises concurrent `migrate()` calls from replicas starting together; any constant shared by them works.
MIGRATION_LOCK_ID = int.from_bytes(b"alephant", "big") & (2**63 - 1)

_DRIVERS: dict[str, tuple[DialectName, str]] = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "sqlite+aiosqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgresql": ("postgresql", "postgresql+asyncpg"),
    "postgres": ("postgresql", "postgresql+asyncpg"),
    "postgresql+asyncpg": ("postgresql", "postgresql+asyncpg"),
}
_ACCEPTED = (
    "sqlite:///path/to/file.db, sqlite+aiosqlite:///path/to/file.db, "
    "postgresql://user@host/db, postgres://user@host/db, postgresql+asyncpg://user@host/db"
)
# Only what precedes "://" is ever quoted back, so a malformed URL cannot leak its credentials.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")


def _normalize(url: str) -> tuple[DialectName, URL]:
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else None
    if scheme not in _DRIVERS:
        shown = f"{scheme!r}" if scheme else "(none)"
        raise ValueError(f"unsupported database URL scheme {shown}; accepted forms: {_ACCEPTED}")
    dialect, driver = _DRIVERS[scheme]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"malformed {scheme} database URL; accepted forms: {_ACCEPTED}") from None
    if dialect == "postgresql" and "sslmode" in parsed.query and "ssl" not in parsed.query:
        # libpq spelling, common in hosted PostgreSQL URLs; asyncpg takes the same values as `ssl`.
        parsed = parsed.update_query_dict({"ssl": parsed.query["sslmode"]}).difference_update_query(["sslmode"])
    return dialect, parsed.set(drivername=driver)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the log writer and readers work at once; busy_timeout makes writers queue instead of failing.
    # synchronous=NORMAL is WAL's usual pairing: no fsync per commit (a process crash loses nothing; a power
    # cut may lose the last commits), which keeps the batch writer ahead of thousands of requests a second.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def alembic_config() -> Config:
    """Alembic configuration built in code, so neither the package nor a deployment needs an alembic.ini."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def _upgrade_head(connection: sa.Connection) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


class Database:
    """The engine for one database URL, opened and closed with the app.

    Usage::

        async with Database("sqlite:///.alephant/alephant.db") as db:
            await db.migrate()
            await db.ping()
    """

    def __init__(self, url: str) -> None:
        self._dialect, self._url = _normalize(url)
        self._engine: AsyncEngine | None = None

    def __repr__(self) -> str:
        return f"Database({self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL with its password masked, for logs and status pages."""
        return self._url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> DialectName:
        return self._dialect

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError(f"{self!r} is not open; call open() or use `async with`")
        return self._engine

    async def open(self) -> None:
        """Create the engine; connects lazily, so a database that is down now does not stop start-up."""
        if self._engine is not None:
            return
        if self._dialect == "sqlite":
            self._ensure_sqlite_dir()
        engine = create_async_engine(
            self._url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            hide_parameters=True,  # request data stays out of exception messages and logs
            pool_pre_ping=self._dialect == "postgresql",  # survive a PostgreSQL restart without one failure
        )
        if self._dialect == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        self._engine = engine

    async def migrate(self) -> None:
        """Upgrade to the newest revision; a no-op when already there.

        A database already at ``HEAD_REVISION`` (every start but the first after an upgrade) is recognised by
        one query, without loading Alembic and its template engine (~0.3 s of start-up, ~5 MB per process).
        """
        if await self._at_head():
            return
        async with self.engine.begin() as connection:
            if self._dialect == "postgresql":
                await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_ID)))
            await connection.run_sync(_upgrade_head)

    async def _at_head(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                found = (await connection.execute(sa.text("SELECT version_num FROM alembic_version"))).scalars()
                return list(found) == [HEAD_REVISION]
        except sa.exc.DBAPIError:  # no version table yet: a new database
            return False

    async def ping(self) -> None:
        """Raise unless the database answers; for readiness probes and the log writer's diagnosis."""
        async with self.engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """The dialect's own INSERT, which knows ``ON CONFLICT``; both dialects spell it the same way."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _ensure_sqlite_dir(self) -> None:
        path = self._url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return
        Path(path).parent.mkdir(parents=True, exist_ok=True)
