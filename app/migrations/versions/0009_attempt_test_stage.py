"""Per-test rows say which comparison stage failed, so instructor statistics group failures with a query on
attempt_tests instead of re-reading every report. Rows stored before this take the stage from their report.

Portable SQL only, like 0001: the same revision runs on SQLite and PostgreSQL.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("attempt_tests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=32), nullable=True))
    # Only failed tests have a stage; their attempts' reports hold it (tests in report order = position).
    conn = op.get_bind()
    tests = sa.table("attempt_tests", sa.column("id"), sa.column("attempt_id"), sa.column("position"),
                     sa.column("status"), sa.column("stage"))
    attempts = sa.table("attempts", sa.column("id"), sa.column("report", sa.JSON))
    rows = conn.execute(sa.select(tests.c.id, tests.c.position, attempts.c.report)
                        .join(attempts, attempts.c.id == tests.c.attempt_id)
                        .where(tests.c.status == "failed").order_by(tests.c.id)).all()
    updates = []
    for test_id, position, report in rows:
        if isinstance(report, str):  # a JSON column read without its type on some drivers
            report = json.loads(report)
        listed = (report or {}).get("tests") or []
        entry = listed[position] if 0 <= position < len(listed) and isinstance(listed[position], dict) else {}
        stage = entry.get("stage")
        if isinstance(stage, str) and stage:
            updates.append({"test_id": test_id, "stage": stage[:32]})
    statement = tests.update().where(tests.c.id == sa.bindparam("test_id")).values(stage=sa.bindparam("stage"))
    for start in range(0, len(updates), BATCH):
        conn.execute(statement, updates[start:start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table("attempt_tests", schema=None) as batch_op:
        batch_op.drop_column("stage")
