"""Fill a database the way gradax did before courses existed (run by test_upgrade_from_main.py with the old
tree on PYTHONPATH): accounts of every role, graded Submits and Runs with per-test rows, a grader failure, an
attempt still queued, progress with drafts and hints, and a regrade's traces. Prints the database URL's tables
as JSON rows on stdout, for the test to compare after the upgrade.

Usage: python fill_before_courses.py DATABASE_URL DATA_DIR
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import text

from app.core.config import Settings
from app.grading import claims
from app.main import create_app
from app.models import Attempt, Role, User
from app.services.attempts import create_attempt
from app.services.problems import get_or_create_progress
from app.services.users import create_user
from graders.report import Report, TestReport, TestStatus, Verdict


def main(url: str, data_dir: str) -> None:
    settings = Settings(data_dir=Path(data_dir), database_url=url, secret_key="s" * 48, grading_workers=0,
                        pool="cold", submit_rate=0, argon2_time_cost=1, argon2_memory_kib=8192)
    app = create_app(settings)
    factory = app.state.session_factory
    with factory() as session:
        users = {name: create_user(session=session, username=name, password="correct horse battery", role=role)
                 for name, role in (("alice", Role.STUDENT), ("bob", Role.STUDENT), ("prof", Role.INSTRUCTOR),
                                    ("root", Role.ADMIN))}
        plan = [("alice", "nnx-module-basics", "submit", Verdict.WRONG_ANSWER, 0.5),
                ("alice", "nnx-module-basics", "submit", Verdict.ACCEPTED, 1.0),
                ("alice", "nnx-linear-bias", "run", Verdict.ACCEPTED, 1.0),
                ("bob", "nnx-module-basics", "submit", Verdict.SYNTAX_ERROR, 0.0),
                ("bob", "nnx-mlp", "submit", Verdict.INTERNAL_ERROR, 0.0),
                ("prof", "nnx-module-basics", "submit", Verdict.ACCEPTED, 1.0)]
        for i, (name, pid, mode, verdict, score) in enumerate(plan):
            attempt = create_attempt(session=session, user=users[name], problem_id=pid, code=f"# attempt {i}\n",
                                     mode=mode, max_code_bytes=65536, per_minute=0)  # type: ignore[arg-type]
            held = claims.claim(factory, attempt.id, worker="filler", lease_s=60)
            assert held is not None
            tests = [TestReport(name="example", public=True,
                                status=TestStatus.PASSED if score >= 0.5 else TestStatus.FAILED, message="m"),
                     TestReport(name="hidden", public=False,
                                status=TestStatus.PASSED if score >= 1 else TestStatus.FAILED, max_abs_error=0.25)]
            report = Report(problem=pid, verdict=verdict, score=score, passed=int(score * 2), total=2, tests=tests,
                            mode=mode)
            claims.finish(factory, held, report, problem_hash="h" * 64, retries=0)
        create_attempt(session=session, user=users["bob"], problem_id="nnx-linear-bias", code="# still queued\n",
                       mode="submit", max_code_bytes=65536, per_minute=0)
        progress = get_or_create_progress(session=session, user_id=users["bob"].id, problem_id="nnx-mlp")
        progress.hints_revealed, progress.draft = 2, "def mlp_forward(): ...\n"
        first = session.query(Attempt).order_by(Attempt.id).first()
        assert first is not None
        first.previous_verdict, first.regraded_at = "accepted", datetime(2026, 11, 30, 12, 0)
        session.commit()
        assert session.query(User).count() == 4
    with app.state.engine.connect() as conn:
        dump = {table: [dict(row._mapping) for row in conn.execute(text(f"SELECT * FROM {table}"))]
                for table in ("users", "attempts", "attempt_tests", "progress", "grading_claims", "alembic_version")}
    app.state.engine.dispose()
    print(json.dumps(dump, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
