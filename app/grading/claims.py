"""Claims: how queue workers take an attempt, keep it, and write its result exactly once.

The attempt row is the source of truth, not the queue. A message only says "look at attempt N":
- `claim` moves the row from queued to running with a fresh token and a lease in one conditional UPDATE,
  so of two deliveries of the same message (or two workers) exactly one gets it;
- `renew` extends the lease while grading; a worker that dies stops renewing;
- `finish` writes the report only if the row still carries this claim's token (a fenced write): a worker
  whose lease expired and whose attempt was re-queued and graded elsewhere writes nothing;
- `sweep` re-queues attempts whose lease expired and lists queued attempts whose message may be lost.
Each step is one guarded statement, so any number of workers and sweepers may run at once, on
PostgreSQL (row locks, READ COMMITTED re-checks the WHERE) and on SQLite (one writer at a time).
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Update, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import session_scope
from app.models import Attempt, AttemptStatus, GradingClaim, utcnow
from app.services.attempts import record_report
from graders.engine import Mode
from graders.report import Report, Verdict

log = logging.getLogger("gradax.claims")

QUEUED, RUNNING = AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value


class Finish(enum.StrEnum):
    DONE = "done"  # the report is stored
    RETRY = "retry"  # the grader failed on its side; the attempt is queued again
    STALE = "stale"  # this claim is no longer current: nothing written


@dataclass(frozen=True)
class Claim:
    attempt_id: int
    token: str
    worker: str
    problem_id: str
    code: str
    mode: Mode
    tries: int


def claim(factory: sessionmaker[Session], attempt_id: int, *, worker: str, lease_s: float) -> Claim | None:
    """Take a queued attempt for grading; None when it is not queued (done, or someone else holds it)."""
    token = str(uuid.uuid4())
    now = utcnow()
    with session_scope(factory) as session:
        taken = _changed(session,
            update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.status == QUEUED)
            .values(status=RUNNING, claim_token=token, claimed_by=worker[:200], started_at=now,
                    lease_expires_at=now + timedelta(seconds=lease_s), tries=Attempt.tries + 1))
        if taken != 1:
            return None
        session.add(GradingClaim(attempt_id=attempt_id, token=token, worker=worker[:200], claimed_at=now))
        row = session.execute(select(Attempt.problem_id, Attempt.code, Attempt.mode, Attempt.tries)
                              .where(Attempt.id == attempt_id)).one()
    mode: Mode = "run" if row.mode == "run" else "submit"
    return Claim(attempt_id, token, worker, row.problem_id, row.code, mode, row.tries)


def renew(factory: sessionmaker[Session], held: Claim, *, lease_s: float) -> bool:
    """Extend the lease; False once the claim is no longer current (the worker should stop caring)."""
    with session_scope(factory) as session:
        return _changed(session,
            update(Attempt)
            .where(Attempt.id == held.attempt_id, Attempt.claim_token == held.token, Attempt.status == RUNNING)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))) == 1


def finish(factory: sessionmaker[Session], held: Claim, report: Report, *, problem_hash: str | None,
           retries: int, retryable: bool = True) -> Finish:
    """Store the report under this claim, or queue the attempt again after a grader-side failure."""
    now = utcnow()
    with session_scope(factory) as session:
        # The fence: this UPDATE matches only while our claim is current, and from here to the commit it holds
        # the row (PostgreSQL row lock; SQLite's write lock), so no sweeper or other worker can slip in.
        fenced = _changed(session,
            update(Attempt)
            .where(Attempt.id == held.attempt_id, Attempt.claim_token == held.token, Attempt.status == RUNNING)
            .values(lease_expires_at=None))
        if fenced != 1:
            _close_claim(session, held.token, Finish.STALE.value, now)
            log.warning("attempt %d: claim %s by %s is no longer current; result discarded",
                        held.attempt_id, held.token, held.worker)
            return Finish.STALE
        attempt = session.get(Attempt, held.attempt_id, populate_existing=True)
        assert attempt is not None  # the fenced UPDATE just matched it
        if retryable and report.verdict == Verdict.INTERNAL_ERROR and attempt.tries <= retries:
            log.warning("attempt %d: internal error (try %d of %d), queued again: %s", held.attempt_id,
                        attempt.tries, retries + 1, report.message)
            # The caller sends the message again at once; marking it sent keeps sweepers from doubling it.
            attempt.status, attempt.claim_token, attempt.enqueued_at = QUEUED, None, now
            _close_claim(session, held.token, Finish.RETRY.value, now)
            return Finish.RETRY
        if problem_hash is not None:
            attempt.problem_hash = problem_hash
        record_report(session=session, attempt=attempt, report=report)
        _close_claim(session, held.token, Finish.DONE.value, now)
    return Finish.DONE


def _close_claim(session: Session, token: str, outcome: str, when: datetime) -> None:
    session.execute(update(GradingClaim).where(GradingClaim.token == token, GradingClaim.outcome.is_(None))
                    .values(outcome=outcome, finished_at=when).execution_options(synchronize_session=False))


@dataclass
class SweepResult:
    expired: list[int]  # running attempts whose lease ran out, now queued again
    abandoned: list[int]  # attempts that killed their workers too often: reported as internal_error
    resend: list[int]  # queued attempts whose message is due to be sent (again)


def sweep(factory: sessionmaker[Session], *, requeue_after_s: float, max_tries: int,
          orphan_after_s: float = 900.0) -> SweepResult:
    """Expire dead claims and pick the queued attempts to send again. Safe to run in many processes at once."""
    now = utcnow()
    result = SweepResult([], [], [])
    # Running without a lease: left by an in-process server (embedded mode) that died; given much longer.
    expired_clause = or_(Attempt.lease_expires_at < now,
                         and_(Attempt.lease_expires_at.is_(None), Attempt.claim_token.is_(None),
                              Attempt.started_at < now - timedelta(seconds=orphan_after_s)))
    with factory() as session:
        expired = session.execute(select(Attempt.id, Attempt.claim_token, Attempt.tries).where(
            Attempt.status == RUNNING, expired_clause)).all()
    for attempt_id, token, tries in expired:
        with session_scope(factory) as session:
            if tries >= max_tries:
                # An attempt whose grading took its worker down again and again is not retried for ever.
                done = _abandon(session, attempt_id, token, tries, now)
                if done:
                    result.abandoned.append(attempt_id)
                continue
            moved = _changed(session,
                update(Attempt)
                .where(Attempt.id == attempt_id, _token_is(token), Attempt.status == RUNNING, expired_clause)
                .values(status=QUEUED, claim_token=None, lease_expires_at=None, enqueued_at=None))
            if moved == 1:
                if token is not None:
                    _close_claim(session, token, "expired", now)
                result.expired.append(attempt_id)
    if result.expired:
        log.warning("re-queued %d attempts whose worker stopped renewing its claim: %s", len(result.expired),
                    result.expired)

    cutoff = now - timedelta(seconds=requeue_after_s)
    with factory() as session:
        due = session.scalars(select(Attempt.id).where(
            Attempt.status == QUEUED,
            # Sent long ago and still queued: the message may be lost. Never sent by a sweeper: the API sent
            # it at creation, so wait as long; just re-queued from a dead worker: send now.
            or_(Attempt.enqueued_at < cutoff,
                and_(Attempt.enqueued_at.is_(None),
                     or_(Attempt.created_at < cutoff, Attempt.id.in_(result.expired)))),
        ).order_by(Attempt.id)).all()
    for attempt_id in due:
        with session_scope(factory) as session:
            # Mark before sending, guarded, so two sweepers never both send the same attempt.
            marked = _changed(session,
                update(Attempt)
                .where(Attempt.id == attempt_id, Attempt.status == QUEUED,
                       or_(Attempt.enqueued_at.is_(None), Attempt.enqueued_at < cutoff))
                .values(enqueued_at=now))
        if marked == 1:
            result.resend.append(attempt_id)
    return result


def _abandon(session: Session, attempt_id: int, token: str | None, tries: int, now: datetime) -> bool:
    fenced = _changed(session,
        update(Attempt)
        .where(Attempt.id == attempt_id, _token_is(token), Attempt.status == RUNNING)
        .values(lease_expires_at=None))
    if fenced != 1:
        return False
    attempt = session.get(Attempt, attempt_id, populate_existing=True)
    assert attempt is not None
    report = Report(problem=attempt.problem_id, verdict=Verdict.INTERNAL_ERROR,
                    mode="run" if attempt.mode == "run" else "submit",
                    message=f"Grading was interrupted {tries} times (the grading worker stopped); "
                            "this is not your fault. Please submit again.")
    record_report(session=session, attempt=attempt, report=report)
    if token is not None:
        _close_claim(session, token, "expired", now)
    log.error("attempt %d: abandoned after %d interrupted gradings", attempt_id, tries)
    return True


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE matched: the atomic test-and-set every step above relies on."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount


def _token_is(token: str | None) -> ColumnElement[bool]:
    return Attempt.claim_token.is_(None) if token is None else Attempt.claim_token == token
