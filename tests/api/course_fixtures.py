"""Course test fixtures: the example course (courses/example/) copied to a scratch directory, an app that reads
it, the instructor `prof`, the students alice and bob enrolled, and a way to grade an attempt with a given score.

For any `settings` fixture: shared by the course tests on SQLite (tests/api/) and on PostgreSQL
(tests/service/test_courses_postgres.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import API, login, make_user
from app.core.config import Settings
from app.grading import claims
from app.main import create_app
from app.models import CourseRole, Role, User
from app.services.courses import add_member
from graders.problem import ProblemBank
from graders.report import Report, Verdict

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "courses" / "example"


@pytest.fixture
def courses_dir(tmp_path: Path) -> Path:
    """A writable copy of the repository's worked example course: tests may add files to it."""
    target = tmp_path / "courses"
    shutil.copytree(EXAMPLE, target / "example")
    return target


@pytest.fixture
def course_app(settings: Settings, bank: ProblemBank, courses_dir: Path) -> FastAPI:
    return create_app(settings.model_copy(update={"courses_dir": courses_dir}), bank=bank)


@pytest.fixture
def course_client(course_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(course_app) as c:
        yield c


@dataclass
class People:
    prof: dict[str, str]
    alice: dict[str, str]
    bob: dict[str, str]
    ids: dict[str, int]


@pytest.fixture
def people(course_app: FastAPI, course_client: TestClient) -> People:
    """prof (site instructor, and the course's by course.yaml after a reload), alice and bob enrolled as students."""
    make_user(course_app, "prof", Role.INSTRUCTOR)
    make_user(course_app, "alice", Role.STUDENT)
    make_user(course_app, "bob", Role.STUDENT)
    with course_app.state.session_factory() as session:
        users = {u.username: u for u in session.query(User).all()}
        add_member(session, course_id="example", user=users["prof"], role=CourseRole.INSTRUCTOR, source="file")
        for name in ("alice", "bob"):
            add_member(session, course_id="example", user=users[name], role=CourseRole.STUDENT, source="roster")
        session.commit()
        ids = {name: u.id for name, u in users.items()}
    return People(login(course_client, "prof"), login(course_client, "alice"), login(course_client, "bob"), ids)


def submit(client: TestClient, headers: dict[str, str], problem_id: str, code: str = "def f():\n    pass\n") -> int:
    """A Submit through the API; with no grading threads it stays queued until `grade` finishes it."""
    r = client.post(f"{API}/submissions", json={"problem_id": problem_id, "code": code}, headers=headers)
    assert r.status_code == 202, r.text
    return int(r.json()["id"])


def grade(app: FastAPI, attempt_id: int, score: float, verdict: Verdict | None = None) -> None:
    """Finish a queued attempt the way a grading worker does (claim, then a fenced finish) with a report that
    passed `score` of its tests: the grade rule cares about the score and the time, not about the sandbox."""
    factory = app.state.session_factory
    held = claims.claim(factory, attempt_id, worker="test", lease_s=60)
    assert held is not None, f"attempt {attempt_id} is not queued"
    verdict = verdict or (Verdict.ACCEPTED if score >= 1.0 else Verdict.WRONG_ANSWER)
    report = Report(problem=held.problem_id, verdict=verdict, score=score, passed=round(score * 10), total=10)
    assert claims.finish(factory, held, report, problem_hash=None, retries=0) == claims.Finish.DONE
