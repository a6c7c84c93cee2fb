"""Ledger: the append-only money ledger and workspace price overrides (issue 8).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
DateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("department_id", sa.Text(), nullable=True),
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount_nano", sa.BigInteger(), nullable=False),
        sa.Column("vendor", sa.Text(), nullable=True),
        sa.Column("tool", sa.Text(), nullable=True),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metadata", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint("workspace_id", "idempotency_key", name="uq_ledger_entries_workspace_id"),
    )
    for column in ("created_at", "workspace_id", "agent_id", "run_id"):
        op.create_index(f"ix_ledger_entries_{column}", "ledger_entries", [column])
    op.create_table(
        "price_overrides",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("input_mtok_nano", sa.BigInteger(), nullable=False),
        sa.Column("output_mtok_nano", sa.BigInteger(), nullable=False),
        sa.Column("cache_read_mtok_nano", sa.BigInteger(), nullable=True),
        sa.Column("cache_write_mtok_nano", sa.BigInteger(), nullable=True),
        sa.Column("reasoning_mtok_nano", sa.BigInteger(), nullable=True),
        sa.Column("request_nano", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_at", DateTime, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "model", name="pk_price_overrides"),
    )


def downgrade() -> None:
    op.drop_table("price_overrides")
    for column in ("run_id", "agent_id", "workspace_id", "created_at"):
        op.drop_index(f"ix_ledger_entries_{column}", table_name="ledger_entries")
    op.drop_table("ledger_entries")
