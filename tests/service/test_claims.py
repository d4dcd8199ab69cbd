"""The claim protocol on SQLite and PostgreSQL: one claim wins, stale workers write nothing, the sweeper
re-queues dead claims and resends lost messages. No grading here: reports are made by hand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import Base, make_engine, make_session_factory
from app.grading import claims
from app.migrate import alembic_config, upgrade_to_head
from app.models import Attempt, AttemptTest, GradingClaim, Progress, User, utcnow
from app.observability import schema_state
from app.services.problems import sync_problems
from graders import report as rep
from graders.problem import ProblemBank
from graders.report import Report, Verdict

pytestmark = pytest.mark.service

PID = "nnx-module-basics"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'claims.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = make_engine(url)
    upgrade_to_head(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine: Engine, bank: ProblemBank) -> sessionmaker[Session]:
    f = make_session_factory(engine)
    with f() as session:
        sync_problems(session=session, bank=bank)
    return f


def new_attempt(factory: sessionmaker[Session], username: str = "alice", *, mode: str = "submit",
                problem_id: str = PID) -> int:
    with factory() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, password_hash="not-a-real-hash")
            session.add(user)
            session.flush()
        attempt = Attempt(user_id=user.id, problem_id=problem_id, mode=mode, code="def f(): pass", status="queued",
                          tries=0)
        session.add(attempt)
        session.commit()
        return attempt.id


def report(verdict: Verdict = Verdict.ACCEPTED, tag: str = "") -> Report:
    passed = verdict == Verdict.ACCEPTED
    status = rep.TestStatus.PASSED if passed else rep.TestStatus.FAILED
    tests = [rep.TestReport(name=f"t{i}{tag}", public=i == 0, status=status) for i in range(3)]
    return Report(problem=PID, verdict=verdict, mode="submit", tests=tests, passed=3 if passed else 0, total=3,
                  score=1.0 if passed else 0.0, message=tag)


def history(factory: sessionmaker[Session], attempt_id: int) -> list[tuple[str, str | None]]:
    with factory() as session:
        rows = session.scalars(select(GradingClaim).where(GradingClaim.attempt_id == attempt_id)
                               .order_by(GradingClaim.id)).all()
        return [(r.worker, r.outcome) for r in rows]


def test_migrations_match_the_models_and_go_down_and_up(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None and schema_state(engine) == (head, head)
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert schema_state(engine)[0] is None
    upgrade_to_head(engine)
    assert schema_state(engine) == (head, head)


def test_only_one_of_many_concurrent_claims_wins(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    won: list[claims.Claim] = []
    barrier = threading.Barrier(8)

    def grab(i: int) -> None:
        barrier.wait()
        held = claims.claim(factory, attempt_id, worker=f"w{i}", lease_s=30)
        if held is not None:
            won.append(held)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert history(factory, attempt_id) == [(won[0].worker, None)]
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.status == "running" and attempt.tries == 1
        assert attempt.claim_token == won[0].token and attempt.claimed_by == won[0].worker


def test_a_second_delivery_after_grading_does_nothing(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    held = claims.claim(factory, attempt_id, worker="w1", lease_s=30)
    assert held is not None
    assert claims.finish(factory, held, report(), problem_hash="h", retries=2) is claims.Finish.DONE
    assert claims.claim(factory, attempt_id, worker="w2", lease_s=30) is None
    # finishing the same claim twice (a retried task body) writes nothing the second time
    assert claims.finish(factory, held, report(Verdict.WRONG_ANSWER), problem_hash="h", retries=2) \
        is claims.Finish.STALE
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.verdict == "accepted" and attempt.problem_hash == "h"
        assert session.query(AttemptTest).filter_by(attempt_id=attempt_id).count() == 3
        assert session.get(Progress, (attempt.user_id, PID)).solved is True  # type: ignore[union-attr]
    assert history(factory, attempt_id) == [("w1", "done")]


def test_a_worker_whose_lease_expired_cannot_overwrite_the_regrade(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    slow = claims.claim(factory, attempt_id, worker="slow", lease_s=0.2)
    assert slow is not None
    time.sleep(0.4)
    swept = claims.sweep(factory, requeue_after_s=60, max_tries=5)
    assert swept.expired == [attempt_id] and swept.resend == [attempt_id]
    assert claims.renew(factory, slow, lease_s=30) is False  # the slow worker learns it lost the claim
    fresh = claims.claim(factory, attempt_id, worker="fresh", lease_s=30)
    assert fresh is not None and fresh.tries == 2
    # the slow worker finishes first with a different verdict: discarded
    assert claims.finish(factory, slow, report(Verdict.WRONG_ANSWER, "slow"), problem_hash=None, retries=2) \
        is claims.Finish.STALE
    assert claims.finish(factory, fresh, report(Verdict.ACCEPTED, "fresh"), problem_hash=None, retries=2) \
        is claims.Finish.DONE
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.verdict == "accepted" and attempt.report is not None
        assert attempt.report["message"] == "fresh"
        names = [t.name for t in session.scalars(select(AttemptTest).where(AttemptTest.attempt_id == attempt_id))]
        assert sorted(names) == ["t0fresh", "t1fresh", "t2fresh"]
    assert history(factory, attempt_id) == [("slow", "expired"), ("fresh", "done")]


def test_renewed_leases_are_not_swept(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    held = claims.claim(factory, attempt_id, worker="w", lease_s=0.5)
    assert held is not None
    for _ in range(4):
        time.sleep(0.25)
        assert claims.renew(factory, held, lease_s=0.5)
        assert claims.sweep(factory, requeue_after_s=60, max_tries=5).expired == []
    assert claims.finish(factory, held, report(), problem_hash=None, retries=2) is claims.Finish.DONE


def test_grader_failures_are_queued_again_then_reported(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    outcomes = []
    for i in range(3):
        held = claims.claim(factory, attempt_id, worker=f"w{i}", lease_s=30)
        assert held is not None
        outcomes.append(claims.finish(factory, held, report(Verdict.INTERNAL_ERROR), problem_hash=None, retries=2))
    assert outcomes == [claims.Finish.RETRY, claims.Finish.RETRY, claims.Finish.DONE]
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.status == "done" and attempt.verdict == "internal_error"
        assert session.get(Progress, (attempt.user_id, PID)) is None  # a grader failure does not count
    assert history(factory, attempt_id) == [("w0", "retry"), ("w1", "retry"), ("w2", "done")]


def test_sweeper_resends_only_messages_that_waited_too_long(factory: sessionmaker[Session]) -> None:
    fresh = new_attempt(factory, "alice")
    old = new_attempt(factory, "bob")
    with factory() as session:
        session.execute(update(Attempt).where(Attempt.id == old).values(created_at=utcnow() - timedelta(minutes=5)))
        session.commit()
    first = claims.sweep(factory, requeue_after_s=60, max_tries=5)
    assert first.resend == [old]
    # a second sweeper right after (another process) does not send it again
    assert claims.sweep(factory, requeue_after_s=60, max_tries=5).resend == []
    assert fresh not in first.resend


def test_an_attempt_that_keeps_killing_workers_is_abandoned(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    for i in range(3):
        assert claims.claim(factory, attempt_id, worker=f"w{i}", lease_s=0.1) is not None
        time.sleep(0.2)
        swept = claims.sweep(factory, requeue_after_s=60, max_tries=3)
    assert swept.abandoned == [attempt_id]
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.status == "done" and attempt.verdict == "internal_error"
        assert attempt.report is not None and "interrupted 3 times" in attempt.report["message"]
    assert [o for _, o in history(factory, attempt_id)] == ["expired", "expired", "expired"]


def test_attempts_left_running_by_a_dead_embedded_server_are_requeued(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    with factory() as session:  # what the in-process dispatcher leaves behind: running, no claim, no lease
        session.execute(update(Attempt).where(Attempt.id == attempt_id).values(
            status="running", tries=1, started_at=utcnow() - timedelta(minutes=30)))
        session.commit()
    assert claims.sweep(factory, requeue_after_s=60, max_tries=5, orphan_after_s=3600).expired == []
    swept = claims.sweep(factory, requeue_after_s=60, max_tries=5, orphan_after_s=600)
    assert swept.expired == [attempt_id] and swept.resend == [attempt_id]
    held = claims.claim(factory, attempt_id, worker="w", lease_s=30)
    assert held is not None and held.tries == 2


@pytest.mark.parametrize("refused", [{"duration_ms": {"nested": [1, 2]}, "message": ""},
                                     {"duration_ms": 1.0, "message": "NUL \x00 unescaped"}], ids=["object", "nul"])
def test_a_report_the_database_refuses_is_stored_reduced(factory: sessionmaker[Session],
                                                         refused: dict[str, object]) -> None:
    """A value no column takes (a test's duration that is an object, as a forged child message once produced; a
    message holding NUL, which a report escapes but a TestReport built without validation would not) must not
    leave the attempt running: its verdict and counts are stored, and the author is free."""
    attempt_id = new_attempt(factory)
    held = claims.claim(factory, attempt_id, worker="w", lease_s=30)
    assert held is not None
    bad = report(Verdict.WRONG_ANSWER)
    bad.tests[0] = rep.TestReport.model_construct(name="t0", public=True, status=rep.TestStatus.FAILED,
                                                  max_abs_error=None, max_rel_error=None, **refused)
    assert claims.finish(factory, held, bad, problem_hash="h", retries=2) is claims.Finish.DONE
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.status == "done" and attempt.verdict == "wrong_answer"
        assert attempt.report is not None and "could not be stored" in attempt.report["message"]
        assert attempt.total == 3 and attempt.passed == 0
    assert history(factory, attempt_id) == [("w", "done")]
    assert new_attempt(factory, problem_id="nnx-linear-bias") > attempt_id  # nothing left active


def test_one_running_attempt_per_author_and_the_rest_wait_behind_it(factory: sessionmaker[Session]) -> None:
    fair = claims.FairShare()
    alice = [new_attempt(factory, "alice", problem_id=p) for p in (PID, "nnx-linear-bias", "nnx-mlp")]
    bob = new_attempt(factory, "bob")
    first = claims.claim_next(factory, worker="w1", lease_s=30, fair=fair)
    assert first is not None and first.attempt_id == alice[0] and first.user_id > 0
    # Asked for alice's second attempt by id (a queue message), the scheduler gives bob's instead.
    second = claims.claim_next(factory, worker="w2", lease_s=30, fair=fair, prefer=alice[1])
    assert second is not None and second.attempt_id == bob
    assert claims.claim_next(factory, worker="w3", lease_s=30, fair=fair) is None
    assert claims.claim(factory, alice[1], worker="w3", lease_s=30) is None
    # Two graders racing for alice's next attempts once her first is done: exactly one starts.
    assert claims.finish(factory, first, report(), problem_hash=None, retries=2) is claims.Finish.DONE
    won: list[claims.Claim] = []
    barrier = threading.Barrier(2)

    def grab(attempt_id: int) -> None:
        barrier.wait()
        try:
            held = claims.claim(factory, attempt_id, worker="racer", lease_s=30)
        except IntegrityError:  # PostgreSQL: the unique index refused the second one
            return
        if held is not None:
            won.append(held)

    threads = [threading.Thread(target=grab, args=(a,)) for a in alice[1:]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    with factory() as session:
        running = session.scalars(select(Attempt.id).where(Attempt.status == "running")).all()
    assert sorted(running) == sorted([bob, won[0].attempt_id])


def test_an_author_over_the_grading_budget_waits_and_others_do_not(factory: sessionmaker[Session]) -> None:
    fair = claims.FairShare(budget_s=5.0, window_s=60.0)
    first = new_attempt(factory, "alice")
    held = claims.claim_next(factory, worker="w", lease_s=30, fair=fair)
    assert held is not None and held.attempt_id == first
    # Its grading took 6 s (a retry would be charged the same way).
    assert claims.finish(factory, held, report(Verdict.WRONG_ANSWER), problem_hash=None, retries=2,
                         cost_s=6.0) is claims.Finish.DONE
    later = new_attempt(factory, "alice", problem_id="nnx-linear-bias")
    bob = new_attempt(factory, "bob")
    nxt = claims.claim_next(factory, worker="w", lease_s=30, fair=fair)
    assert nxt is not None and nxt.attempt_id == bob
    assert claims.claim_next(factory, worker="w", lease_s=30, fair=fair) is None
    wait = claims.budget_wait_s(factory, held.user_id, fair)
    assert 50 < wait <= 60
    # Once the charge leaves the window, alice's attempt starts.
    with factory() as session:
        session.execute(update(GradingClaim).values(finished_at=utcnow() - timedelta(seconds=61)))
        session.commit()
    again = claims.claim_next(factory, worker="w", lease_s=30, fair=fair)
    assert again is not None and again.attempt_id == later
    with factory() as session:
        charged = session.scalars(select(GradingClaim.cost_s).where(GradingClaim.attempt_id == first)).all()
    assert charged == [6.0]


def test_start_delay_says_when_an_attempt_that_could_not_start_may(factory: sessionmaker[Session]) -> None:
    """What a queue worker does with a message it cannot act on: nothing while the author has an attempt running
    (its end hands the next one off), a message for later while only the budget holds it."""
    fair = claims.FairShare(budget_s=5.0, window_s=60.0)
    first = new_attempt(factory, "alice")
    later = new_attempt(factory, "alice", problem_id="nnx-linear-bias")
    held = claims.claim_next(factory, worker="w", lease_s=30, fair=fair)
    assert held is not None and held.attempt_id == first
    assert claims.start_delay_s(factory, later, fair) is None  # behind alice's running attempt
    assert claims.finish(factory, held, report(), problem_hash=None, retries=2, cost_s=6.0) is claims.Finish.DONE
    assert claims.start_delay_s(factory, first, fair) is None  # done: nothing to announce
    assert claims.claim_next(factory, worker="w", lease_s=30, fair=fair, prefer=later) is None
    delay = claims.start_delay_s(factory, later, fair)
    assert delay is not None and 50 < delay <= 60  # when the 6 s charge leaves the minute
    with factory() as session:
        session.execute(update(GradingClaim).values(finished_at=utcnow() - timedelta(seconds=61)))
        session.commit()
    assert claims.start_delay_s(factory, later, fair) == 0.0


def test_a_regrade_runs_under_its_own_claim_and_writes_once(factory: sessionmaker[Session]) -> None:
    attempt_id = new_attempt(factory)
    held = claims.claim(factory, attempt_id, worker="w", lease_s=30)
    assert held is not None
    assert claims.finish(factory, held, report(Verdict.WRONG_ANSWER), problem_hash="old", retries=2) \
        is claims.Finish.DONE
    inside = threading.Event()
    release = threading.Event()
    results: list[claims.Regraded | None] = []

    def slow_grade(claimed: claims.Claim) -> Report:
        assert claimed.code == "def f(): pass" and claimed.attempt_id == attempt_id
        inside.set()
        release.wait(10)
        return report(Verdict.ACCEPTED, "regraded")

    first = threading.Thread(target=lambda: results.append(claims.regrade(
        factory, attempt_id, slow_grade, problem_hash="new", worker="regrade-1", lease_s=30, max_hold_s=60)))
    first.start()
    assert inside.wait(10)
    # A second regrade while the first holds the attempt: refused, and the attempt still reads as done.
    assert claims.regrade(factory, attempt_id, slow_grade, problem_hash="new", worker="regrade-2", lease_s=30,
                          max_hold_s=60) is None
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.status == "done" and attempt.verdict == "wrong_answer"
    release.set()
    first.join(10)
    assert results == [claims.Regraded(attempt_id, results[0].user_id if results[0] else 0, "wrong_answer",
                                       "accepted", stored=True)]
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.verdict == "accepted" and attempt.previous_verdict == "wrong_answer"
        assert attempt.problem_hash == "new" and attempt.lease_expires_at is None
    assert history(factory, attempt_id) == [("w", "done"), ("regrade-1", "regraded")]
    # A grader-side failure in a regrade keeps the result it had.
    failed = claims.regrade(factory, attempt_id, lambda c: report(Verdict.INTERNAL_ERROR), problem_hash="x",
                            worker="regrade-3", lease_s=30, max_hold_s=60)
    assert failed is not None and failed.stored is False and failed.new == "accepted"
    with factory() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.verdict == "accepted" and attempt.problem_hash == "new"
