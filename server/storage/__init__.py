"""Storage: one schema for SQLite (embedded default) and PostgreSQL (production), and services on it.

Nothing here runs on the request hot path except ``LogWriter.submit``, which only queues; keys are read
into an in-memory snapshot that the gateway reloads when ``KeyStore.version()`` changes.
"""

from server.storage.database import Database, DialectName, alembic_config
from server.storage.keys import KeyStore, hash_secret, new_secret, secret_prefix
from server.storage.logs import LogQuery, LogWriter
from server.storage.records import KeyRecord, LogRow
from server.storage.responses import ResponseStore, StoredResponse

__all__ = [
    "Database",
    "DialectName",
    "KeyRecord",
    "KeyStore",
    "LogQuery",
    "LogRow",
    "LogWriter",
    "ResponseStore",
    "StoredResponse",
    "alembic_config",
    "hash_secret",
    "new_secret",
    "secret_prefix",
]
