"""Invitation links: `course_invitations.token`, the secret of `/register?invite=...`.

An email invitation was taken by whoever typed its address into the Register form first. Now it is taken only
through its link, which the course's staff hand to the person. Pending invitations get their token here.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""
from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("course_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_course_invitations_token"), ["token"])
    bind = op.get_bind()
    table = sa.table("course_invitations", sa.column("id", sa.Integer()), sa.column("token", sa.String()))
    for (invitation_id,) in bind.execute(sa.select(table.c.id)).all():
        bind.execute(sa.update(table).where(table.c.id == invitation_id).values(token=secrets.token_urlsafe(24)))


def downgrade() -> None:
    with op.batch_alter_table("course_invitations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_course_invitations_token"), type_="unique")
        batch_op.drop_column("token")
