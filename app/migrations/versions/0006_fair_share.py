"""Fair share: at most one running attempt per author, and the grading time charged to each claim.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL. An author with several
attempts running (possible before this revision) keeps the oldest; the others go back to the queue.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("UPDATE attempts SET status = 'queued', claim_token = NULL, lease_expires_at = NULL "
               "WHERE status = 'running' AND id NOT IN "
               "(SELECT min(id) FROM attempts WHERE status = 'running' GROUP BY user_id)")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.create_index("uq_attempts_one_running_per_user", ["user_id"], unique=True,
                              sqlite_where=sa.text("status = 'running'"),
                              postgresql_where=sa.text("status = 'running'"))
    with op.batch_alter_table("grading_claims", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_s", sa.Float(), server_default=sa.text("0"), nullable=False))
        batch_op.create_index(batch_op.f("ix_grading_claims_finished_at"), ["finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("grading_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grading_claims_finished_at"))
        batch_op.drop_column("cost_s")
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_index("uq_attempts_one_running_per_user",
                            sqlite_where=sa.text("status = 'running'"),
                            postgresql_where=sa.text("status = 'running'"))
