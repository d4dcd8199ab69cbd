"""Upgrading a database filled by gradax as it was before courses (main at BEFORE_COURSES, Alembic 0003) keeps
every attempt, per-test row, progress row, claim and account exactly, and the upgraded database then runs
courses: an old accepted Submit counts for an assignment the student joins afterwards.

The old tree comes from git history (`git archive`), and fills the database with its own code in a
subprocess; the upgrade and everything after run the current code. On SQLite here and on PostgreSQL in
tests/service/test_courses_postgres.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from api.helpers import make_settings
from sqlalchemy import text

from app.db import make_engine
from app.main import create_app
from app.migrate import upgrade_to_head
from app.models import Assignment, CourseRole, User
from app.services.courses import add_member
from app.services.grades import effective_score
from graders.problem import ProblemBank

ROOT = Path(__file__).resolve().parents[2]
BEFORE_COURSES = "7d90fc89ab66ac3c7438fee86979641a36229478"  # main just before migration 0004 (courses)
FILLER = Path(__file__).with_name("fill_before_courses.py")
TABLES = ("users", "attempts", "attempt_tests", "progress", "grading_claims")


@pytest.fixture(scope="session")
def old_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """app/, graders/, problems/ and reference_solutions/ as they were at BEFORE_COURSES."""
    proc = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", BEFORE_COURSES, "app", "graders",
                           "problems", "reference_solutions"], capture_output=True, timeout=120)
    if proc.returncode != 0:
        message = f"git history with {BEFORE_COURSES} is needed: {proc.stderr.decode(errors='replace')[:300]}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    target = tmp_path_factory.mktemp("gradax-before-courses")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def fill_with_old_main(old_tree: Path, url: str, data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    env = {**os.environ, "PYTHONPATH": str(old_tree), "GRADAX_PROBLEMS_DIR": str(old_tree / "problems")}
    proc = subprocess.run([sys.executable, str(FILLER), url, str(data_dir)], capture_output=True, text=True,
                          env=env, cwd=old_tree, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dump: dict[str, list[dict[str, Any]]] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert dump["alembic_version"] == [{"version_num": "0003"}], "the filler did not run the old code"
    return dump


def read_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {table: [dict(row._mapping) for row in conn.execute(text(f"SELECT * FROM {table}"))]
                    for table in TABLES}
    finally:
        engine.dispose()


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON values (dates as text, as the filler printed them), in a fixed order."""
    plain = [json.loads(json.dumps(r, default=str)) for r in rows]
    return sorted(plain, key=lambda r: json.dumps(r, sort_keys=True))


def check_upgrade(old_tree: Path, url: str, tmp_path: Path, data_dir: Path, bank: ProblemBank) -> None:
    before = fill_with_old_main(old_tree, url, tmp_path / "old-data")
    assert len(before["attempts"]) == 7 and len(before["attempt_tests"]) == 12
    engine = make_engine(url)
    upgrade_to_head(engine)
    engine.dispose()
    after = read_tables(url)
    for table in TABLES:
        old_rows = sorted_rows(before[table])
        columns = set(before[table][0])
        new_rows = sorted_rows([{k: v for k, v in r.items() if k in columns} for r in after[table]])
        assert new_rows == old_rows, f"{table} changed in the upgrade"
    assert all(u["email"] is None for u in after["users"])

    # The upgraded database runs courses: alice joins a course whose assignment holds a problem she solved
    # before the upgrade, and her old Submits count under the grade rule.
    courses_dir = tmp_path / "courses"
    due = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    (courses_dir / "legacy" / "assignments").mkdir(parents=True)
    (courses_dir / "legacy" / "course.yaml").write_text("title: Legacy\ninstructors: [prof]\n")
    (courses_dir / "legacy" / "assignments" / "hw1.yaml").write_text(
        f"title: HW 1\ndue: {due}\nproblems:\n  - {{id: nnx-module-basics, points: 10}}\n")
    settings = make_settings(tmp_path, data_dir, database_url=url, courses_dir=courses_dir)
    app = create_app(settings, bank=bank)
    try:
        with app.state.session_factory() as session:
            alice = session.query(User).filter_by(username="alice").one()
            add_member(session, course_id="legacy", user=alice, role=CourseRole.STUDENT, source="roster")
            session.commit()
            hw1 = session.query(Assignment).filter_by(course_id="legacy", slug="hw1").one()
            grade = effective_score(session, assignment_id=hw1.id, user_id=alice.id)
            assert grade.points == 10.0 and grade.problems["nnx-module-basics"].counted is not None
    finally:
        app.state.engine.dispose()


@pytest.mark.slow  # builds the old tree's database with its own code, then migrates it: seconds
def test_upgrade_keeps_every_attempt_sqlite(old_tree: Path, tmp_path: Path, data_dir: Path,
                                           bank: ProblemBank) -> None:
    check_upgrade(old_tree, f"sqlite:///{tmp_path / 'old.db'}", tmp_path, data_dir, bank)
