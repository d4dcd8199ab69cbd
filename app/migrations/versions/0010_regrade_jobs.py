"""Regrade jobs: an instructor's regrade and its progress in the database (it lived in the server's memory, so
a restart or a second server process lost it).

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "regrade_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("problem_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("flipped", sa.Integer(), nullable=False),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runner", sa.String(length=200), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("grading_started_at", sa.DateTime(), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["started_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("regrade_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_regrade_jobs_problem_id"), ["problem_id"], unique=False)
        batch_op.create_index("uq_regrade_jobs_one_running", ["problem_id"], unique=True,
                              sqlite_where=sa.text("status = 'running'"),
                              postgresql_where=sa.text("status = 'running'"))


def downgrade() -> None:
    op.drop_table("regrade_jobs")
