"""The grade rule on a real database with a frozen clock: every branch, through the real Submit path.

Submits go through the API at a frozen instant (their `created_at` is when the server stored them) and are
finished through the grading claims with a chosen score. The same tests run on PostgreSQL
(tests/service/test_courses_postgres.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.course_fixtures import People, grade, submit
from api.helpers import login
from app.models import Assignment, AssignmentScore
from app.services.grades import effective_score
from app.services.score_events import ScoreChange, add_score_listener, remove_score_listener

# hw1 of courses/example: Europe/Zurich (UTC+1 in March), opens 2026-02-23 09:00, due 2026-03-06 23:59,
# late until 2026-03-09 23:59, -20 % per started day; nnx-module-basics and nnx-linear-bias, 10 points each;
# alice has 2 extra days in the file.
DUE_UTC = datetime(2026, 3, 6, 22, 59, tzinfo=UTC)
PID = "nnx-module-basics"


def at(text: str) -> datetime:
    """A UTC instant, written as ISO text."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def hw1(app: FastAPI) -> int:
    with app.state.session_factory() as session:
        row = session.query(Assignment).filter_by(course_id="example", slug="hw1").one()
        return row.id


def score_of(app: FastAPI, user_id: int) -> tuple[float, bool]:
    with app.state.session_factory() as session:
        grade_now = effective_score(session, assignment_id=hw1(app), user_id=user_id)
        stored = session.get(AssignmentScore, (hw1(app), user_id))
        assert stored is not None and stored.points == grade_now.points, "the stored score lags the rule"
        return grade_now.points, grade_now.late


@pytest.fixture
def changes() -> list[ScoreChange]:
    seen: list[ScoreChange] = []

    def listener(_session: object, change: ScoreChange) -> None:
        seen.append(change)

    add_score_listener(listener)
    yield seen
    remove_score_listener(listener)


def submit_at(client: TestClient, app: FastAPI, username: str, when: datetime, score: float,
              problem_id: str = PID) -> int:
    """`username` Submits at `when` (a token from that moment: tokens issued later are not valid yet)."""
    with time_machine.travel(when, tick=False):
        attempt = submit(client, login(client, username), problem_id)
    grade(app, attempt, score)  # graded later: the Submit's time is when it was stored
    return attempt


def test_on_time_submit_earns_its_points_and_is_published(course_app: FastAPI, course_client: TestClient,
                                                          people: People, changes: list[ScoreChange]) -> None:
    submit_at(course_client, course_app, "bob", at("2026-03-06T22:00:00"), 0.5)
    assert score_of(course_app, people.ids["bob"]) == (5.0, False)
    assert [(c.user_id, c.old_points, c.points, c.max_points, c.reason) for c in changes] == [
        (people.ids["bob"], 0.0, 5.0, 20.0, "graded")]
