"""Verified emails: `users.email_verified`, true only where an LMS vouched for the address.

A typed email (the register form) is anyone's claim; LMS launches linked accounts by email, so an account that
typed someone else's address was handed that person's LMS identity. Accounts an LMS launch created (no password,
`!lti`) had their email from the platform: those start verified; every other email starts unverified.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_verified", sa.Boolean(), server_default=sa.text("false"),
                                      nullable=False))
    op.execute("UPDATE users SET email_verified = true WHERE email IS NOT NULL AND password_hash = '!lti'")


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email_verified")
