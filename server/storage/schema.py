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

__all__ = [
    "UTCDateTime",
    "api_keys",
    "as_utc",
    "budgets",
    "ledger_entries",
    "limits",
    "metadata",
    "price_overrides",
    "request_log",
    "routers",
    "runs",
    "spans",
    "state_version",
    "stored_responses",
]

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
    # governance (migration 0005): who the key belongs to, what it may do, and its own model policy
    sa.Column("department_id", sa.Text, nullable=True),
    sa.Column("agent_id", sa.Text, nullable=True),
    sa.Column("scopes", JSONType, nullable=False),
    sa.Column("policy", JSONType, nullable=False),
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
    sa.Column("body_ref", sa.Text, nullable=True),  # archived bodies' object key (migration 0011)
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

# Every workspace that owns something has a row ("default" is created by the migration); ``policy`` is a
# ``server.governance.policy.ModelPolicy`` as JSON, ``time_zone`` an IANA name for calendar budget periods.
workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("policy", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "name"),
)

# The Agent ID is the user's own (the Alephant-Agent-Id header's value), so it is unique per workspace only.
agents = sa.Table(
    "agents",
    metadata,
    sa.Column("workspace_id", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("department_id", sa.Text, nullable=True),
    sa.Column("owner", sa.Text, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("policy", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Bring-your-own provider keys, AES-GCM encrypted with a key derived from the master key
# (``server.governance.crypto``); the plaintext never reaches the database.
provider_keys = sa.Table(
    "provider_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

# --- limits (issue 6): budgets and rate/concurrency limit definitions (migration 0006) ---

# Budgets: at most limit_nano per calendar period (in time_zone) for one scope; scope_id NULL applies the budget
# to each value of the scope separately (e.g. every run). Changes bump state_version('limits').
budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("scope", sa.Text, nullable=False),  # workspace | department | key | agent | run
    sa.Column("scope_id", sa.Text, nullable=True),
    sa.Column("period", sa.Text, nullable=False),  # hourly | daily | weekly | monthly | total
    sa.Column("limit_nano", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),  # hard | soft
    sa.Column("time_zone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Rate (rpm, tpm, rpd) and concurrency limits for one scope; scope_id NULL applies to each value of it.
limits = sa.Table(
    "limits",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("scope", sa.Text, nullable=False),  # workspace | key | agent | model
    sa.Column("scope_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),  # rpm | tpm | rpd | concurrency
    sa.Column("limit", sa.BigInteger, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# --- ledger (issue 8): the append-only money ledger (migration 0007) ---

# Every money movement that is not a model call (those are request_log rows): tool and payment spend, revenue,
# cache savings, adjustments. Append-only: nothing updates or deletes a row; a correction is a new adjustment.
ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("department_id", sa.Text, nullable=True),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("agent_id", sa.Text, nullable=True, index=True),
    sa.Column("run_id", sa.Text, nullable=True, index=True),
    sa.Column("session_id", sa.Text, nullable=True),
    sa.Column("request_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("amount_nano", sa.BigInteger, nullable=False),  # positive; only adjustments may be negative
    sa.Column("vendor", sa.Text, nullable=True),
    sa.Column("tool", sa.Text, nullable=True),
    sa.Column("endpoint", sa.Text, nullable=True),  # a paid endpoint's id (revenue, payments)
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("metadata", JSONType, nullable=False),
    sa.UniqueConstraint("workspace_id", "idempotency_key"),  # NULL keys never conflict: no key, no dedup
)

# Workspace prices above the catalog and genai-prices: negotiated rates and custom models. `model` is
# "provider/model" or "provider/*"; `version` counts the row's changes and is recorded with every cost.
price_overrides = sa.Table(
    "price_overrides",
    metadata,
    sa.Column("workspace_id", sa.Text, primary_key=True),
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("input_mtok_nano", sa.BigInteger, nullable=False),
    sa.Column("output_mtok_nano", sa.BigInteger, nullable=False),
    sa.Column("cache_read_mtok_nano", sa.BigInteger, nullable=True),
    sa.Column("cache_write_mtok_nano", sa.BigInteger, nullable=True),
    sa.Column("reasoning_mtok_nano", sa.BigInteger, nullable=True),
    sa.Column("request_nano", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# --- runs (issue 7): runs and spans (migration 0008) ---

# Explicit runs (POST /v1/runs). A run id seen only in request headers has no row: it is an implicit run,
# aggregated from request_log. Ids are the client's or generated; they are unique within a workspace.
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("workspace_id", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("agent_id", sa.Text, nullable=True, index=True),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),  # running | completed | failed | cancelled
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False, index=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("explicit", sa.Boolean, nullable=False),
)

# Trace spans that are not requests (requests are their request_log rows): tool calls, payments, custom.
spans = sa.Table(
    "spans",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False, index=True),
    sa.Column("parent_id", sa.Text, nullable=True),  # another span, or a request id
    sa.Column("session_id", sa.Text, nullable=True),
    sa.Column("request_id", sa.Text, nullable=True),
    sa.Column("kind", sa.Text, nullable=False),  # tool | payment | custom
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False, index=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("cost_nano", sa.BigInteger, nullable=False),  # integer nano-USD
    sa.Column("attributes", JSONType, nullable=False),
)

# A run's requests are read by (workspace, run); implicit runs are aggregated over the same pair.
sa.Index("ix_request_log_workspace_run", request_log.c.workspace_id, request_log.c.run_id)

# --- routers (issue 5): routers managed through the admin API, next to those of alephant.yaml (migration 0009) ---
routers = sa.Table(
    "routers",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("config", JSONType, nullable=False),  # a RouterConfig, as alephant.yaml's routers.<id> would hold it
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# --- payments (issue 9): paid endpoints, wallets, payment records (migration 0010) ---

# Paid endpoints managed through the admin API (those of alephant.yaml are not stored). Prices in nano-USD.
paid_endpoints = sa.Table(
    "paid_endpoints",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("path", sa.Text, nullable=False, unique=True),
    sa.Column("target", sa.Text, nullable=False),  # an upstream URL, or model:provider/model
    sa.Column("price_nano", sa.BigInteger, nullable=False),
    sa.Column("network", sa.Text, nullable=False),  # CAIP-2
    sa.Column("asset", sa.Text, nullable=False),
    sa.Column("pay_to", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# One EVM wallet per agent; the private key is sealed with a key derived from the master key.
wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False),
    sa.Column("agent_id", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("policy", JSONType, nullable=False),  # max_price_usd, allowed origins / recipients / networks / assets
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("workspace_id", "agent_id"),
)

# Every payment taken or made. ``claim`` (network:token:payer:nonce) is unique: inserting it before the paid
# handler runs is what makes the handler run at most once per payment.
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("claim", sa.Text, nullable=False, unique=True),
    sa.Column("direction", sa.Text, nullable=False),  # in (revenue) | out (spend)
    sa.Column("rail", sa.Text, nullable=False),  # x402 | mpp
    sa.Column("workspace_id", sa.Text, nullable=False, index=True),
    sa.Column("endpoint_id", sa.Text, nullable=True),
    sa.Column("agent_id", sa.Text, nullable=True),
    sa.Column("payer", sa.Text, nullable=False),
    sa.Column("pay_to", sa.Text, nullable=False),
    sa.Column("amount_nano", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # claimed | settled | failed
    sa.Column("reference", sa.Text, nullable=True),  # the settlement's transaction
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("settled_at", UTCDateTime, nullable=True),
)

# --- archive and delivery (issue 7): body references, sinks (migration 0011) ---
# ``request_log.body_ref`` (above, last column) references archived bodies; sinks spool on disk, not here.
