"""The one schema definition both dialects share (SQLAlchemy Core, no ORM).

Alembic migrations under ``migrations/versions`` must build exactly this; a test compares the migrated
database with this metadata on SQLite and PostgreSQL, so an edit here without a migration fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

__all__ = ["UTCDateTime", "api_keys", "as_utc", "metadata", "request_log", "state_version", "stored_responses"]

# Explicit constraint names keep migrations reproducible: autogenerate and hand-written revisions agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

# JSONB on PostgreSQL so properties can be filtered and indexed later; plain JSON text on SQLite.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC: the gateway only makes aware ones, and reading a stray naive one as
    local time would shift it by the server's offset, differently on every machine."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on both dialects.

    SQLite has no time zone type and SQLAlchemy's SQLite ``DATETIME`` silently drops ``tzinfo`` without
    converting, so values are converted to UTC before they lose it and marked UTC again on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return as_utc(value)


api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("prefix", sa.Text, nullable=False, index=True),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("models", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("metadata", JSONType, nullable=False),
)

# One column per LogRow field, in LogRow's order: the COPY path sends tuples in this order.
request_log = sa.Table(
    "request_log",
    metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("key_id", sa.Text, nullable=True, index=True),
    sa.Column("workspace_id", sa.Text, nullable=True, index=True),
    sa.Column("agent_id", sa.Text, nullable=True, index=True),
    sa.Column("run_id", sa.Text, nullable=True, index=True),
    sa.Column("session_id", sa.Text, nullable=True),
    sa.Column("properties", JSONType, nullable=False),
    sa.Column("model", sa.Text, nullable=True),
    sa.Column("provider", sa.Text, nullable=True),
    sa.Column("upstream_model", sa.Text, nullable=True),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("error_code", sa.Text, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
    sa.Column("completion_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
    sa.Column("latency_ms", sa.Double, nullable=False),
    sa.Column("ttfb_ms", sa.Double, nullable=True),
    sa.Column("cost_nano", sa.BigInteger, nullable=False),  # integer nano-USD, never a float
    sa.Column("price_source", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempt_log", sa.Text, nullable=True),  # JSON text: COPY and multi-row inserts pass it as is
    sa.Column("department_id", sa.Text, nullable=True),
    sa.Column("policy_events", sa.Text, nullable=True),  # JSON text, as attempt_log
)

# Bumped in the same transaction as every change to the table it names ("keys"), so gateway processes can poll
# one row instead of re-reading their whole snapshot.
state_version = sa.Table(
    "state_version",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

# Responses API answers kept for `previous_response_id` and `GET /v1/responses/{id}` (store: true).
# `items` is the conversation so far as Responses input items: earlier input, this input, this output.
stored_responses = sa.Table(
    "stored_responses",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("request_id", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("response", JSONType, nullable=False),
    sa.Column("items", JSONType, nullable=False),
)

# --- governance (issue 6): workspaces, departments, agents, provider keys (migration 0005) ---

# --- limits (issue 6): budgets and rate/concurrency limit definitions (migration 0006) ---

# --- ledger (issue 8): the append-only money ledger (migration 0007) ---

# --- runs (issue 7): runs and spans (migration 0008) ---
