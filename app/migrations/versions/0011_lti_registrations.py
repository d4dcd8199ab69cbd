"""LTI Dynamic Registration: one-time registration URLs an administrator issues for an LMS to register itself.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lti_registrations",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.Column("platform_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["platform_id"], ["lti_platforms.id"],
                                name=op.f("fk_lti_registrations_platform_id_lti_platforms"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_lti_registrations")),
    )


def downgrade() -> None:
    op.drop_table("lti_registrations")
