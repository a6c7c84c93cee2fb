"""Governance: workspaces, departments, agents, key scopes and policies, encrypted provider keys (issue 6).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
DateTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Existing keys get no scopes and an empty policy; the server defaults only fill those rows.
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("department_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("agent_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("scopes", JSONType, nullable=False, server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("policy", JSONType, nullable=False, server_default=sa.text("'{}'")))
    workspaces = op.create_table(
        "workspaces",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("time_zone", sa.Text(), nullable=False, server_default="UTC"),
        sa.Column("policy", JSONType, nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workspaces"),
    )
    # Keys have always been able to name any workspace; the default one is the master key's. SQLite keeps
    # naive UTC (as ``schema.UTCDateTime`` writes it), PostgreSQL an aware timestamp.
    now = datetime.now(UTC)
    created = now.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else now
    op.bulk_insert(
        workspaces, [{"id": "default", "name": "default", "time_zone": "UTC", "policy": {}, "created_at": created}]
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_departments"),
        sa.UniqueConstraint("workspace_id", "name", name="uq_departments_workspace_id"),
    )
    op.create_index("ix_departments_workspace_id", "departments", ["workspace_id"])
    op.create_table(
        "agents",
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("department_id", sa.Text(), nullable=True),
        sa.Column("owner", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("policy", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "id", name="pk_agents"),
    )
    op.create_table(
        "provider_keys",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", DateTime, nullable=False),
        sa.Column("revoked_at", DateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_provider_keys"),
    )
    op.create_index("ix_provider_keys_workspace_id", "provider_keys", ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_provider_keys_workspace_id", table_name="provider_keys")
    op.drop_table("provider_keys")
    op.drop_table("agents")
    op.drop_index("ix_departments_workspace_id", table_name="departments")
    op.drop_table("departments")
    op.drop_table("workspaces")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("policy")
        batch.drop_column("scopes")
        batch.drop_column("agent_id")
        batch.drop_column("department_id")
