"""Migration 0009: failed per-test rows stored before it get the stage their report names, so instructor
statistics (which read attempt_tests) group old failures as they always did."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.db import make_session_factory
from app.migrate import upgrade_to_head
from app.models import Attempt, Problem
from migrations.conftest import database_at

REPORT = {"verdict": "wrong_answer", "tests": [
    {"name": "example", "status": "passed"},
    {"name": "hidden-1", "status": "failed", "stage": "shape"},
    {"name": "hidden-2", "status": "failed"},  # a report from before stages
    {"name": "hidden-3", "status": "error", "stage": None}]}


def test_old_failed_tests_take_their_stage_from_the_report(tmp_path: Path) -> None:
    engine = database_at(tmp_path, "0008")
    with make_session_factory(engine)() as session:
        # Raw SQL: the model has columns later migrations add (users.email_verified).
        session.execute(sa.text("INSERT INTO users (id, username, password_hash, role, created_at) "
                                "VALUES (1, 'alice', 'x', 'student', '2026-01-01 00:00:00')"))
        session.add(Problem(id="p", title="P", track="t", difficulty="easy", order=1, function="f",
                            content_hash="h"))
        session.flush()
        session.add(Attempt(id=1, user_id=1, problem_id="p", mode="submit", code="", status="done",
                            verdict="wrong_answer", report=REPORT))
        session.commit()
    rows = sa.table("attempt_tests", sa.column("attempt_id"), sa.column("position"), sa.column("name"),
                    sa.column("public"), sa.column("status"), sa.column("message"))
    with engine.begin() as conn:
        conn.execute(rows.insert(), [{"attempt_id": 1, "position": i, "name": t["name"], "public": i == 0,
                                      "status": t["status"], "message": ""} for i, t in enumerate(REPORT["tests"])])
    upgrade_to_head(engine)
    with engine.connect() as conn:
        stages = conn.execute(sa.text("SELECT name, stage FROM attempt_tests ORDER BY position")).all()
    engine.dispose()
    assert [tuple(r) for r in stages] == [("example", None), ("hidden-1", "shape"), ("hidden-2", None),
                                          ("hidden-3", None)]
