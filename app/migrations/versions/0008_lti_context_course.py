"""LTI: an LMS course (context) maps to a gradax course, whose members launches enrol.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lti_contexts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("course_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_lti_contexts_course_id"), ["course_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_lti_contexts_course_id_courses"), "courses", ["course_id"],
                                    ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("lti_contexts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_lti_contexts_course_id_courses"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_lti_contexts_course_id"))
        batch_op.drop_column("course_id")
