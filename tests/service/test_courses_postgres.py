"""The course tests (grade rule with a frozen clock, courses API) again on PostgreSQL: same models, migrations and
behaviour. The test functions are imported unchanged; only `settings` differs (a fresh PostgreSQL database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from api.course_fixtures import People, course_app, course_client, courses_dir, grade, people, submit  # noqa: F401  (fixtures)
from api.helpers import login, make_settings
from api.test_course_scores import *  # noqa: F403
from api.test_course_scores import HW1_DUE, PID, grade_of, submit_at
from api.test_courses_api import *  # noqa: F403
from api.test_nul_text import *  # noqa: F403
from fastapi import FastAPI
from fastapi.testclient import TestClient
from migrations.test_upgrade_from_main import check_upgrade, old_tree  # noqa: F401  (old_tree: a fixture)
from sqlalchemy import select

from app.core.config import Settings
from app.models import Assignment, User
from app.services.adjustments import set_override
from app.services.score_events import ScoreChange, add_score_listener, remove_score_listener
from graders.problem import ProblemBank

pytestmark = pytest.mark.service


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path, pg_url: str) -> Settings:
    return make_settings(tmp_path, data_dir, database_url=pg_url)


def test_upgrade_keeps_every_attempt_postgres(old_tree: Path, tmp_path: Path, data_dir: Path,  # noqa: F811
                                              bank: ProblemBank,
                                              pg_url: str) -> None:
    check_upgrade(old_tree, pg_url, tmp_path, data_dir, bank)


def test_a_grading_and_an_override_at_once_both_reach_the_stored_score(
        course_app: FastAPI, course_client: TestClient, people: People) -> None:  # noqa: F811
    """PostgreSQL commits two score refreshes at once (SQLite has one writer): alice's Submit is graded while the
    instructor overrides her other problem. The one that commits last must see the other's change, or the stored
    score (gradebook, LMS passback) misses it. The grading is held open inside its transaction meanwhile."""
    when = HW1_DUE - timedelta(hours=2)
    submit_at(course_client, course_app, "alice", when, 0.2)  # a stored score exists: both refreshes update it
    with time_machine.travel(when, tick=False):
        attempt = submit(course_client, login(course_client, "alice"), PID)
    inside, release = threading.Event(), threading.Event()

    def hold(_session: object, change: ScoreChange) -> None:
        if change.reason == "graded" and not inside.is_set():
            inside.set()
            release.wait(20)

    def set_other_problem() -> None:
        with course_app.state.session_factory() as session:
            hw1 = session.scalars(select(Assignment).filter_by(course_id="example", slug="hw1")).one()
            student, prof = session.get(User, people.ids["alice"]), session.get(User, people.ids["prof"])
            assert student is not None and prof is not None
            set_override(session, assignment=hw1, student=student, problem_id="nnx-linear-bias", points=7,
                         comment="oral exam", by=prof)

    errors: list[BaseException] = []

    def in_thread(work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException as exc:  # reported below: a thread's exception would vanish
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    add_score_listener(hold)
    try:
        grading = in_thread(lambda: grade(course_app, attempt, 1.0))
        assert inside.wait(30), errors
        overriding = in_thread(set_other_problem)
        time.sleep(1.0)  # the override reaches its score refresh while the grading is still open
        release.set()
        grading.join(30)
        overriding.join(30)
    finally:
        release.set()
        remove_score_listener(hold)
    assert errors == []
    assert grade_of(course_app, "alice").points == 17.0  # 10 of 10 graded and 7 overridden, stored as computed
