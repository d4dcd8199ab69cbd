"""Regrades: the verdict an attempt had before its latest regrade, and when that was.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_verdict", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("regraded_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("regraded_at")
        batch_op.drop_column("previous_verdict")
