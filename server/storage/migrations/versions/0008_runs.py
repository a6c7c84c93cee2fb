"""Runs and spans: the trace tree agent -> run -> session -> request (issue 7).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
DateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("agent_id", sa.Text(), nullable=True),
        sa.Column("key_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("started_at", DateTime, nullable=False),
        sa.Column("ended_at", DateTime, nullable=True),
        sa.Column("explicit", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_runs"),
    )
    op.create_index("ix_runs_agent_id", "runs", ["agent_id"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "spans",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("started_at", DateTime, nullable=False),
        sa.Column("ended_at", DateTime, nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("cost_nano", sa.BigInteger(), nullable=False),
        sa.Column("attributes", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spans"),
    )
    op.create_index("ix_spans_run_id", "spans", ["run_id"])
    op.create_index("ix_spans_started_at", "spans", ["started_at"])
    op.create_index("ix_request_log_workspace_run", "request_log", ["workspace_id", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_request_log_workspace_run", table_name="request_log")
    op.drop_index("ix_spans_started_at", table_name="spans")
    op.drop_index("ix_spans_run_id", table_name="spans")
    op.drop_table("spans")
    op.drop_index("ix_runs_started_at", table_name="runs")
    op.drop_index("ix_runs_agent_id", table_name="runs")
    op.drop_table("runs")
