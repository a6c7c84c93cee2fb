"""Request log: the upstream attempts of each request (count and a compact per-attempt list).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Appended, in LogRow's order: the COPY path sends tuples in column order. Existing rows made one attempt
    # or none; 0 (unknown) is their honest value.
    with op.batch_alter_table("request_log") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("attempt_log", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("attempt_log")
        batch.drop_column("attempts")
