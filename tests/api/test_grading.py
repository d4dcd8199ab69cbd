"""Real grading through the API: the sandbox runs the code, the dispatcher stores the report and progress."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.helpers import API, ROOT_PROBLEMS, make_settings, register, wait_done
from app.grading.inprocess_dispatcher import InProcessDispatcher
from app.main import create_app
from app.models import Attempt, AttemptTest
from graders.executor import ColdExecutor, Executor
from graders.problem import LoadedProblem, ProblemBank
from graders.sandbox import ChildOutcome, SandboxLimits

# One xdist worker runs all the web tests that grade for real, so they do not slow each other past time limits.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-grading")]

PID = "nnx-module-basics"
REFERENCE = (ROOT_PROBLEMS.parent / "reference_solutions" / "nnx_module_basics.py").read_text()
MISTAKES = {m["id"]: m for m in yaml.safe_load((ROOT_PROBLEMS / f"{PID}.yaml").read_text())["known_mistakes"]}


@pytest.fixture
def grading_app(tmp_path: Path, data_dir: Path, bank: ProblemBank, warm_pool: Executor) -> FastAPI:
    # Graded in this test process's warm pool (tests/conftest.py), as `gradax serve` grades: a child each instead of
    # a fresh Python importing jax; the pool outlives the app (create_app's `executor`).
    return create_app(make_settings(tmp_path, data_dir, grading_workers=1, pool="warm"), bank=bank,
                      executor=warm_pool)


def test_wrong_then_right_submission(grading_app: FastAPI) -> None:
    with TestClient(grading_app) as client:
        alice = register(client, "alice")
        wrong = MISTAKES["no-scaling"]
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": wrong["code"]}, headers=alice)
        assert r.status_code == 202
        done = wait_done(client, r.json()["id"], alice)
        assert done["verdict"] == "wrong_answer"
        report = done["report"]
        assert report["diagnosis"] == wrong["message"]
        assert report["passed"] < report["total"] == 7
        assert report["tests"][0]["name"] == "example" and report["tests"][0]["status"] == "failed"
        with grading_app.state.session_factory() as session:
            rows = session.query(AttemptTest).filter_by(attempt_id=done["id"]).order_by(AttemptTest.position).all()
            assert [t.name for t in rows] == [t["name"] for t in report["tests"]]
            assert rows[0].status == "failed" and rows[0].max_abs_error is not None
        assert client.get(f"{API}/problems/{PID}/solution", headers=alice).status_code == 403

        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE}, headers=alice)
        done = wait_done(client, r.json()["id"], alice)
        assert done["verdict"] == "accepted" and done["score"] == 1.0
        assert done["report"]["passed"] == done["report"]["total"] == 7

        detail = client.get(f"{API}/problems/{PID}", headers=alice).json()
        assert detail["progress"]["solved"] is True and detail["progress"]["attempts"] == 2
        assert detail["solution"] == REFERENCE
        assert client.get(f"{API}/problems/{PID}/solution", headers=alice).json()["solution"] == REFERENCE
        listed = {p["id"]: p["progress"] for p in client.get(f"{API}/problems", headers=alice).json()["data"]}
        assert listed[PID]["solved"] is True and listed[PID]["best_score"] == 1.0


def test_an_app_given_an_executor_grades_with_it_and_leaves_it_running(grading_app: FastAPI, warm_pool: Executor,
                                                                      bank: ProblemBank) -> None:
    """`create_app(executor=...)`: the app grades through the caller's executor, and stopping the app neither stops
    nor closes it (a closed warm pool would grade every later submission cold)."""
    from graders.engine import Grader
    from graders.pool import WarmPool

    assert isinstance(warm_pool, WarmPool) and grading_app.state.grader.executor is warm_pool
    before = dict(warm_pool.stats)
    with TestClient(grading_app) as client:
        alice = register(client, "alice")
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE}, headers=alice)
        assert wait_done(client, r.json()["id"], alice)["verdict"] == "accepted"
    assert warm_pool.stats["warm"] == before.get("warm", 0) + 1 and warm_pool.stats["cold"] == before.get("cold", 0)
    # The app has stopped; the pool it was given still grades warm.
    graded = Grader(bank, grading_app.state.settings, executor=warm_pool).grade(PID, REFERENCE.encode())
    assert graded.accepted
    assert warm_pool.stats["warm"] == before.get("warm", 0) + 2 and warm_pool.stats["cold"] == before.get("cold", 0)


def test_a_long_poll_is_answered_when_the_grading_thread_stores_the_result(
        grading_app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the dispatcher's notification this poll would sleep for its whole wait.
    monkeypatch.setattr(grading_app.state.settings, "long_poll_recheck_s", 300.0)
    with TestClient(grading_app) as client:
        alice = register(client, "alice")
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE}, headers=alice)
        start = time.monotonic()
        polled = client.get(f"{API}/submissions/{r.json()['id']}", params={"wait": 30}, headers=alice)
        assert polled.json()["status"] == "done" and polled.json()["verdict"] == "accepted"
        assert time.monotonic() - start < 29


def test_run_grades_public_tests_only_and_does_not_solve(grading_app: FastAPI) -> None:
    with TestClient(grading_app) as client:
        alice = register(client, "alice")
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE, "mode": "run"},
                        headers=alice)
        done = wait_done(client, r.json()["id"], alice)
        assert done["verdict"] == "accepted"
        assert [t["name"] for t in done["report"]["tests"]] == ["example"]
        detail = client.get(f"{API}/problems/{PID}", headers=alice).json()
        assert detail["progress"]["solved"] is False and detail["solution"] is None


def test_syntax_error_is_reported_with_its_line(grading_app: FastAPI) -> None:
    with TestClient(grading_app) as client:
        alice = register(client, "alice")
        code = "def module_basics_forward(seed, x, features)\n    return x\n"
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": code}, headers=alice)
        done = wait_done(client, r.json()["id"], alice)
        assert done["verdict"] == "syntax_error" and done["report"]["line"] == 1


def test_what_the_code_wrote_is_stored_whole_and_shown_escaped(grading_app: FastAPI) -> None:
    """NUL and terminal escapes in a submission's exception and stdout: PostgreSQL cannot store NUL in text, so the
    report's details were lost there ("could not be stored"); now every report holds them escaped, on any backend."""
    code = ("def module_basics_forward(seed, x, features):\n    print('\\x1b[2Jcleared\\x00')\n"
            "    raise ValueError('bad\\x00value')\n")
    with TestClient(grading_app) as client:
        alice = register(client, "alice")
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": code, "mode": "run"}, headers=alice)
        done = wait_done(client, r.json()["id"], alice)
        report = done["report"]
        assert done["verdict"] == "runtime_error", report
        assert report["tests"][0]["message"] == "ValueError: bad\\x00value", report
        assert report["stdout"].startswith("\\x1b[2Jcleared\\x00"), report
        with grading_app.state.session_factory() as session:
            row = session.query(AttemptTest).filter_by(attempt_id=done["id"]).one()
            assert row.message == "ValueError: bad\\x00value"


class BrokenExecutor(ColdExecutor):
    """An executor whose sandbox never starts: the grader's own failure, not the student's."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def grade(self, problem: LoadedProblem, request: bytes, limits: SandboxLimits) -> ChildOutcome:
        self.calls += 1
        raise OSError("sandbox unavailable")


def test_grader_failures_are_retried_then_reported_as_internal_error(app: FastAPI, client: TestClient,
                                                                     alice: dict[str, str]) -> None:
    r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE}, headers=alice)
    attempt_id = r.json()["id"]
    grader = app.state.grader
    broken = BrokenExecutor()
    grader.executor = broken
    try:
        dispatcher = InProcessDispatcher(app.state.session_factory, grader, workers=1, retries=2)
        assert dispatcher.grade_attempt(attempt_id) is True  # try 1 failed: back in the queue
        assert attempt_id in dispatcher._backing_off()  # not taken again by a grading thread for a second
        assert dispatcher.grade_attempt(attempt_id) is True  # try 2
        assert dispatcher.grade_attempt(attempt_id) is False  # try 3: give up and report
    finally:
        grader.executor = ColdExecutor()
    assert broken.calls == 3
    done = client.get(f"{API}/submissions/{attempt_id}", headers=alice).json()
    assert done["status"] == "done" and done["verdict"] == "internal_error"
    assert "not your fault" in done["report"]["message"]
    with app.state.session_factory() as session:
        assert session.get(Attempt, attempt_id).tries == 3  # type: ignore[union-attr]
    # a grader failure does not count against the student
    detail = client.get(f"{API}/problems/{PID}", headers=alice).json()
    assert detail["progress"]["best_score"] == 0.0 and detail["progress"]["solved"] is False


def test_a_result_that_cannot_be_stored_is_requeued_by_the_sweeper_and_graded(
        tmp_path: Path, data_dir: Path, bank: ProblemBank, warm_pool: Executor,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18, finding 1: in the embedded server, storing a result fails once (the database went away at that
    moment). The attempt must not stay `running` with its author locked out of the problem: its claim stops
    being renewed, the sweeper (which runs in the embedded mode too) queues it again, and it is graded."""
    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from app.grading import claims
    from app.models import GradingClaim

    real_finish = claims.finish
    failures: list[int] = []

    def finish_once_broken(*args: object, **kwargs: object) -> claims.Finish:
        if not failures:
            failures.append(1)
            raise OperationalError("UPDATE attempts ...", {}, Exception("database is locked"))
        return real_finish(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(claims, "finish", finish_once_broken)
    settings = make_settings(tmp_path, data_dir, grading_workers=1, grading_lease_s=1.0, sweep_interval_s=0.5,
                             pool="warm")
    app = create_app(settings, bank=bank, executor=warm_pool)
    with TestClient(app) as client:
        alice = register(client, "alice")
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE}, headers=alice)
        attempt_id = r.json()["id"]
        done = wait_done(client, attempt_id, alice, timeout=300)
        assert failures == [1]
        assert done["verdict"] == "accepted"
        with app.state.session_factory() as session:
            attempt = session.get(Attempt, attempt_id)
            assert attempt is not None and attempt.tries == 2
            outcomes = session.scalars(select(GradingClaim.outcome).where(GradingClaim.attempt_id == attempt_id)
                                       .order_by(GradingClaim.id)).all()
        assert outcomes == ["expired", "done"]
        # ...and its author can submit on that problem again at once.
        r = client.post(f"{API}/submissions", json={"problem_id": PID, "code": REFERENCE}, headers=alice)
        assert r.status_code == 202, r.text
