"""Request log: the caller's department and the policy and limit decisions taken on the request.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Appended, in LogRow's order: the COPY path sends tuples in column order.
    with op.batch_alter_table("request_log") as batch:
        batch.add_column(sa.Column("department_id", sa.Text(), nullable=True))
        batch.add_column(sa.Column("policy_events", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("policy_events")
        batch.drop_column("department_id")
