"""The grade rule on a real database with a frozen clock: every branch, through the real Submit path.

Submits go through the API at a frozen instant (their `created_at` is when the server stored them) and are
finished through the grading claims with a chosen score; the regrade test grades for real in the sandbox.
The same tests run on PostgreSQL (tests/service/test_courses_postgres.py).

The assignments are the worked example's (courses/example/, Europe/Zurich, UTC+1 in March):
- hw1: opens 2026-02-23 09:00, due 2026-03-06 23:59, late until 2026-03-09 23:59, -20 % per started day;
  nnx-module-basics and nnx-linear-bias, 10 points each; alice has 2 extra days in the file.
- hw2: due 2026-03-13 23:59, late until 2026-03-20 23:59, a late Submit keeps 50 %; nnx-mlp, nnx-stateful-counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.course_fixtures import People, grade, submit
from api.helpers import login
from app.models import Assignment, AssignmentScore, User
from app.services.adjustments import set_extension, set_override
from app.services.gradebook import standings
from app.services.grades import effective_score
from app.services.instructor import regrade_problem
from app.services.score_events import ScoreChange, add_score_listener, remove_score_listener
from graders.grade_rule import AssignmentGrade
from graders.report import Verdict

ROOT = Path(__file__).resolve().parents[2]
PID = "nnx-module-basics"
HW1_OPENS = datetime(2026, 2, 23, 8, 0, tzinfo=UTC)
HW1_DUE = datetime(2026, 3, 6, 22, 59, tzinfo=UTC)
HW1_LATE_UNTIL = datetime(2026, 3, 9, 22, 59, tzinfo=UTC)
HW2_DUE = datetime(2026, 3, 13, 22, 59, tzinfo=UTC)


def assignment(app: FastAPI, slug: str = "hw1") -> int:
    with app.state.session_factory() as session:
        return int(session.query(Assignment).filter_by(course_id="example", slug=slug).one().id)


def grade_of(app: FastAPI, username: str, slug: str = "hw1") -> AssignmentGrade:
    """The effective score now; also checks the stored score (what the gradebook and listeners see) agrees."""
    with app.state.session_factory() as session:
        user = session.query(User).filter_by(username=username).one()
        result = effective_score(session, assignment_id=assignment(app, slug), user_id=user.id)
        stored = session.get(AssignmentScore, (assignment(app, slug), user.id))
        assert stored is not None and stored.points == result.points and stored.late == result.late, \
            "the stored score lags the rule"
        return result


@pytest.fixture
def changes() -> Iterator[list[ScoreChange]]:
    seen: list[ScoreChange] = []

    def listener(_session: object, change: ScoreChange) -> None:
        seen.append(change)

    add_score_listener(listener)
    yield seen
    remove_score_listener(listener)


def submit_at(client: TestClient, app: FastAPI, username: str, when: datetime, score: float,
              problem_id: str = PID, code: str = "def f():\n    pass\n") -> int:
    """`username` Submits at `when` (with a token from that moment: tokens issued later are not valid yet);
    graded afterwards, so the Submit's time is when it was stored, not when its grading finished."""
    with time_machine.travel(when, tick=False):
        attempt = submit(client, login(client, username), problem_id, code)
    grade(app, attempt, score)
    return attempt


def test_on_time_submit_earns_its_points_and_is_published(course_app: FastAPI, course_client: TestClient,
                                                          people: People, changes: list[ScoreChange]) -> None:
    # 23:30 in Zurich is 22:30 UTC: before the due date, which the file wrote as 23:59 Zurich time.
    submit_at(course_client, course_app, "bob", datetime(2026, 3, 6, 22, 30, tzinfo=UTC), 0.5)
    g = grade_of(course_app, "bob")
    assert (g.points, g.max_points, g.late) == (5.0, 20.0, False)
    assert [(c.user_id, c.old_points, c.points, c.max_points, c.late, c.reason) for c in changes] == [
        (people.ids["bob"], 0.0, 5.0, 20.0, False, "graded")]


def test_before_opens_counts_for_nothing(course_app: FastAPI, course_client: TestClient, people: People,
                                         changes: list[ScoreChange]) -> None:
    submit_at(course_client, course_app, "bob", HW1_OPENS - timedelta(minutes=1), 1.0)
    g = grade_of(course_app, "bob")
    assert g.points == 0.0 and g.problems[PID].counted is None and g.problems[PID].ignored_before_opens == 1
    assert changes == [], "nothing changed, so nothing is published"
    submit_at(course_client, course_app, "bob", HW1_OPENS, 1.0)  # the opening minute itself counts
    assert grade_of(course_app, "bob").points == 10.0


def test_late_submits_lose_20_percent_per_started_day(course_app: FastAPI, course_client: TestClient,
                                                      people: People) -> None:
    submit_at(course_client, course_app, "bob", HW1_DUE + timedelta(hours=2), 1.0)
    g = grade_of(course_app, "bob")
    assert (g.points, g.late, g.penalty, g.late_by) == (8.0, True, 0.2, timedelta(hours=2))
    with course_app.state.session_factory() as session:
        bob = session.get(User, people.ids["bob"])
        assert bob is not None
        [standing] = standings(session, bob, [session.get(Assignment, assignment(course_app))])  # type: ignore[list-item]
        assert standing.text == "8/20, submitted 2 h late, -20 %"
    # 25 h late is two started days: -40 %, but the better Submit (8 points) still counts
    submit_at(course_client, course_app, "bob", HW1_DUE + timedelta(hours=25), 1.0)
    assert grade_of(course_app, "bob").points == 8.0
    submit_at(course_client, course_app, "alice", HW1_DUE + timedelta(days=2, hours=1), 1.0,
              problem_id="nnx-linear-bias")  # alice's file extension moved her due date by 2 days: 1 h late
    g = grade_of(course_app, "alice")
    assert (g.points, g.late_by) == (8.0, timedelta(hours=1))


def test_the_best_submit_counts_and_among_equals_the_earliest(course_app: FastAPI, course_client: TestClient,
                                                             people: People) -> None:
    first = submit_at(course_client, course_app, "bob", HW1_DUE - timedelta(days=1), 0.8)
    submit_at(course_client, course_app, "bob", HW1_DUE + timedelta(hours=1), 1.0)  # 10 - 20 % = 8: a tie
    g = grade_of(course_app, "bob")
    assert g.points == 8.0 and not g.late and g.problems[PID].counted is not None
    assert g.problems[PID].counted.attempt_id == first
    submit_at(course_client, course_app, "bob", HW1_DUE - timedelta(hours=1), 0.3)  # worse: no change
    assert grade_of(course_app, "bob").points == 8.0


def test_nothing_counts_after_late_until(course_app: FastAPI, course_client: TestClient, people: People) -> None:
    submit_at(course_client, course_app, "bob", HW1_LATE_UNTIL + timedelta(seconds=1), 1.0)
    g = grade_of(course_app, "bob")
    assert g.points == 0.0 and g.problems[PID].ignored_after_late_until == 1
    submit_at(course_client, course_app, "bob", HW1_LATE_UNTIL, 1.0)  # the last minute: 3 days late, -60 %
    assert grade_of(course_app, "bob").points == 4.0


def test_a_fixed_late_factor_keeps_half(course_app: FastAPI, course_client: TestClient, people: People) -> None:
    submit_at(course_client, course_app, "bob", HW2_DUE + timedelta(days=6), 1.0, problem_id="nnx-mlp")
    g = grade_of(course_app, "bob", "hw2")
    assert (g.points, g.late, g.penalty) == (5.0, True, 0.5)


def test_extension_from_the_file_and_from_staff(course_app: FastAPI, course_client: TestClient, people: People,
                                                changes: list[ScoreChange]) -> None:
    # alice has 2 extra days in hw1.yaml: a day after the due date she is on time
    submit_at(course_client, course_app, "alice", HW1_DUE + timedelta(days=1), 1.0)
    submit_at(course_client, course_app, "bob", HW1_DUE + timedelta(days=1), 1.0)
    assert (grade_of(course_app, "alice").points, grade_of(course_app, "alice").late) == (10.0, False)
    assert grade_of(course_app, "bob").points == 8.0
    # staff give bob 3 days (wins over nothing) and alice only 1 h (wins over her file's 2 days)
    with course_app.state.session_factory() as session:
        hw1 = session.get(Assignment, assignment(course_app))
        prof, alice, bob = (session.get(User, people.ids[n]) for n in ("prof", "alice", "bob"))
        assert hw1 is not None and prof is not None and alice is not None and bob is not None
        set_extension(session, assignment=hw1, student=bob, due=hw1.due + timedelta(days=3), late_until=None,
                      reason="sick", by=prof)
        set_extension(session, assignment=hw1, student=alice, due=hw1.due + timedelta(hours=1), late_until=None,
                      reason="only an hour", by=prof)
    assert (grade_of(course_app, "bob").points, grade_of(course_app, "bob").late) == (10.0, False)
    assert (grade_of(course_app, "alice").points, grade_of(course_app, "alice").late) == (8.0, True)
    assert [(c.user_id, c.points, c.reason) for c in changes if c.reason == "extension"] == [
        (people.ids["bob"], 10.0, "extension"), (people.ids["alice"], 8.0, "extension")]


def override(app: FastAPI, people: People, username: str, points: float | None, comment: str) -> None:
    with app.state.session_factory() as session:
        hw1 = session.get(Assignment, assignment(app))
        student, prof = session.get(User, people.ids[username]), session.get(User, people.ids["prof"])
        assert hw1 is not None and student is not None and prof is not None
        set_override(session, assignment=hw1, student=student, problem_id=PID, points=points, comment=comment,
                     by=prof)


def test_an_override_replaces_the_computed_points_until_removed(course_app: FastAPI, course_client: TestClient,
                                                               people: People, changes: list[ScoreChange]) -> None:
    submit_at(course_client, course_app, "bob", HW1_DUE - timedelta(hours=3), 0.5)
    override(course_app, people, "bob", 7.0, "partial credit: the scaling is right")
    g = grade_of(course_app, "bob")
    assert (g.points, g.overridden, g.problems[PID].computed_points) == (7.0, True, 5.0)
    assert g.problems[PID].override_comment == "partial credit: the scaling is right"
    submit_at(course_client, course_app, "bob", HW1_DUE - timedelta(hours=1), 1.0)  # a later, better Submit
    assert grade_of(course_app, "bob").points == 7.0, "a Submit never replaces an override"
    override(course_app, people, "bob", None, "")
    g = grade_of(course_app, "bob")
    assert (g.points, g.overridden) == (10.0, False)
    assert [(c.old_points, c.points, c.overridden, c.reason) for c in changes] == [
        (0.0, 5.0, False, "graded"), (5.0, 7.0, True, "override"), (7.0, 10.0, False, "override")]


@pytest.mark.slow
def test_a_regrade_never_overwrites_an_override_and_lists_it(course_app: FastAPI, course_client: TestClient,
                                                             people: People) -> None:
    """Both students' wrong code was stored as accepted (as if the tests had a bug); the regrade grades it for
    real in the sandbox: bob's score drops, alice's override stays and her flip says "overridden"."""
    import yaml

    problem = yaml.safe_load((ROOT / "problems" / f"{PID}.yaml").read_text())
    wrong = next(m["code"] for m in problem["known_mistakes"] if m["id"] == "no-scaling")
    for name in ("alice", "bob"):
        submit_at(course_client, course_app, name, HW1_DUE - timedelta(hours=5), 1.0, code=wrong)
    override(course_app, people, "alice", 9.0, "checked by hand")
    result = regrade_problem(course_app.state.session_factory, course_app.state.grader, PID)
    # wrong_answer; on a machine loaded far past its cores, a cold start may hit the time limit instead
    assert {(f.username, f.old, f.overridden) for f in result.flipped} == {
        ("alice", "accepted", True), ("bob", "accepted", False)}
    assert all(f.new in ("wrong_answer", "time_limit_exceeded") for f in result.flipped), result.flipped
    assert grade_of(course_app, "alice").points == 9.0
    assert grade_of(course_app, "bob").points < 10.0


def test_runs_and_grader_failures_never_count(course_app: FastAPI, course_client: TestClient,
                                              people: People) -> None:
    with time_machine.travel(HW1_DUE - timedelta(hours=1), tick=False):
        headers = login(course_client, "bob")
        r = course_client.post("/api/v1/submissions",
                               json={"problem_id": PID, "code": "def f():\n    pass\n", "mode": "run"},
                               headers=headers)
        assert r.status_code == 202, r.text
    grade(course_app, int(r.json()["id"]), 1.0)
    with time_machine.travel(HW1_DUE - timedelta(minutes=30), tick=False):
        failed = submit(course_client, login(course_client, "bob"), PID)
    grade(course_app, failed, 1.0, Verdict.INTERNAL_ERROR)  # (a real one would be retried first)
    assert grade_of(course_app, "bob").points == 0.0


def test_a_failing_listener_never_fails_grading(course_app: FastAPI, course_client: TestClient, people: People,
                                                changes: list[ScoreChange]) -> None:
    def broken(_session: object, _change: ScoreChange) -> None:
        raise RuntimeError("the LMS outbox is broken")

    later: list[ScoreChange] = []

    def after(_session: object, change: ScoreChange) -> None:
        later.append(change)

    add_score_listener(broken)
    add_score_listener(after)  # registered after the broken one
    try:
        attempt = submit_at(course_client, course_app, "bob", HW1_DUE - timedelta(hours=1), 1.0)
    finally:
        remove_score_listener(broken)
        remove_score_listener(after)
    r = course_client.get(f"/api/v1/submissions/{attempt}", headers=login(course_client, "bob"))
    assert (r.json()["status"], r.json()["verdict"]) == ("done", "accepted")
    assert grade_of(course_app, "bob").points == 10.0
    assert [c.points for c in later] == [c.points for c in changes] == [10.0], "the other listeners heard of it"
