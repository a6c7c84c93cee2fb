"""Request log: the object key of a request's archived bodies (issue 7). Sinks spool on disk, not here.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Appended as the last column, in LogRow's order: the COPY path sends tuples in column order.
    with op.batch_alter_table("request_log") as batch:
        batch.add_column(sa.Column("body_ref", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as batch:
        batch.drop_column("body_ref")
