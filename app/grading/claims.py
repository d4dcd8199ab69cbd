"""Claims: the only module that changes an attempt's grading state.

The attempt row is the source of truth, not a queue. Whoever grades (a thread of the embedded server, a
`gradax worker`, an instructor's regrade) goes through these steps, each one guarded statement:
- `claim` / `claim_next` move a row from queued to running with a fresh token and a lease in one conditional
  UPDATE, so of two deliveries of the same message (or two graders) exactly one gets it. `claim_next` is the
  scheduler: the oldest queued attempt whose author has nothing running and is within their grading budget
  (fair share: one author's backlog waits behind their own running attempt, never in front of others);
  `start_delay_s` says when an attempt that could not start may (a queue worker announces it again then);
- `renew` extends the lease while grading (`Keeper` does it from a thread); a grader that dies stops renewing;
- `finish` writes the report only if the row still carries this claim's token (a fenced write), charges the
  grading time to the author, and queues an `internal_error` again (bounded). If the report cannot be stored
  a reduced one is, so an attempt never stays `running` because of what it reported;
- `release` puts a claim back (graceful stop); `recover` puts back everything a dead embedded server left;
- `sweep` re-queues attempts whose lease expired and lists queued attempts whose message may be lost;
- `regrade` grades a finished attempt again under a claim of its own and stores the new report fenced by it.
At most one attempt per author is `running`: a partial unique index holds it even against racing graders.
Any number of graders and sweepers may run at once, on PostgreSQL (row locks, READ COMMITTED re-checks the
WHERE) and on SQLite (one writer at a time).
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Update, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from app.db import session_scope
from app.models import Attempt, AttemptStatus, GradingClaim, utcnow
from app.services.attempts import record_report, store_report
from graders.engine import Mode
from graders.report import Report, Verdict, internal_error

log = logging.getLogger("gradax.claims")

QUEUED, RUNNING, DONE = AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value, AttemptStatus.DONE.value
# How many candidates `claim_next` tries before giving up on a round (others may be claiming the same rows).
CANDIDATES = 8
# Other attempts in the same statement as `Attempt`: made once, as SQLAlchemy then builds each alias's columns once
# instead of on every call (an alias per call was most of a claim's CPU: ~1.9 ms of eligible()'s 2.8).
_RUNNING = aliased(Attempt, name="running")
_CHARGED = aliased(Attempt, name="charged")


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
    user_id: int = 0


@dataclass(frozen=True)
class FairShare:
    """Scheduling rules of `claim_next`: each author's grading time over the last `window_s` seconds may not
    exceed `budget_s` before their next attempt starts (0: no budget). One running attempt per author always."""

    budget_s: float = 0.0
    window_s: float = 60.0


# -- taking a claim ------------------------------------------------------------------------------------------

def claim(factory: sessionmaker[Session], attempt_id: int, *, worker: str, lease_s: float) -> Claim | None:
    """Take this queued attempt; None when it is not queued (done, or someone else holds it) or when its
    author already has an attempt running."""
    with session_scope(factory) as session:
        return _take(session, attempt_id, worker=worker, lease_s=lease_s)


def claim_next(factory: sessionmaker[Session], *, worker: str, lease_s: float, fair: FairShare,
               prefer: int | None = None, exclude: Collection[int] = ()) -> Claim | None:
    """Take the attempt to grade next: `prefer` if it may start now, else the oldest queued attempt whose
    author has nothing running and is within budget. None when nothing may start now."""
    for attempt_id in eligible(factory, fair=fair, prefer=prefer, exclude=exclude):
        try:
            with session_scope(factory) as session:
                held = _take(session, attempt_id, worker=worker, lease_s=lease_s)
        except IntegrityError:  # another grader started an attempt of the same author a moment ago
            continue
        if held is not None:
            return held
    return None


def eligible(factory: sessionmaker[Session], *, fair: FairShare, prefer: int | None = None,
             exclude: Collection[int] = (), limit: int = CANDIDATES) -> list[int]:
    """Queued attempts that may start now, in the order they should (`prefer` first when it may)."""
    now = utcnow()
    running = _RUNNING
    where: list[ColumnElement[bool]] = [
        Attempt.status == QUEUED,
        ~exists().where(running.user_id == Attempt.user_id, running.status == RUNNING),
    ]
    if fair.budget_s > 0:
        where.append(Attempt.user_id.not_in(_over_budget(fair, now)))
    if exclude:
        where.append(Attempt.id.not_in(list(exclude)))
    with factory() as session:
        ids = list(session.scalars(select(Attempt.id).where(*where).order_by(Attempt.id).limit(limit)))
        if prefer is None or prefer in exclude:
            return ids
        if prefer in ids:
            ids.remove(prefer)
            ids.insert(0, prefer)
        elif session.scalar(select(Attempt.id).where(Attempt.id == prefer, *where)) is not None:
            ids.insert(0, prefer)
    return ids


def _over_budget(fair: FairShare, now: datetime) -> Any:
    """Authors whose graded time in the window has reached the budget."""
    charged = _CHARGED
    return (select(charged.user_id).join(GradingClaim, GradingClaim.attempt_id == charged.id)
            .where(GradingClaim.finished_at > now - timedelta(seconds=fair.window_s))
            .group_by(charged.user_id).having(func.sum(GradingClaim.cost_s) >= fair.budget_s))


def budget_wait_s(factory: sessionmaker[Session], user_id: int, fair: FairShare) -> float:
    """Seconds until this author is back within budget (0 when they are, or there is no budget)."""
    if fair.budget_s <= 0:
        return 0.0
    now = utcnow()
    with factory() as session:
        rows = session.execute(
            select(GradingClaim.finished_at, GradingClaim.cost_s).join(Attempt, Attempt.id == GradingClaim.attempt_id)
            .where(Attempt.user_id == user_id, GradingClaim.finished_at > now - timedelta(seconds=fair.window_s))
            .order_by(GradingClaim.finished_at)).all()
    used = sum(cost for _, cost in rows)
    for finished_at, cost in rows:  # charges leave the window oldest first
        if used < fair.budget_s or finished_at is None:
            break
        used -= cost
        if used < fair.budget_s:
            return max(0.0, (finished_at + timedelta(seconds=fair.window_s) - now).total_seconds())
    return 0.0


def start_delay_s(factory: sessionmaker[Session], attempt_id: int, fair: FairShare) -> float | None:
    """For a queued attempt that could not be claimed just now: the seconds until its author's budget lets it
    start (0: it may start now; it lost a race), or None when nobody needs to announce it again: it is not
    queued any more, or its author has an attempt running, whose grader hands this one off when it ends."""
    running = _RUNNING
    with factory() as session:
        row = session.execute(select(Attempt.user_id, exists().where(running.user_id == Attempt.user_id,
                                                                     running.status == RUNNING))
                              .where(Attempt.id == attempt_id, Attempt.status == QUEUED)).one_or_none()
    if row is None or row[1]:
        return None
    return budget_wait_s(factory, row[0], fair)


def _take(session: Session, attempt_id: int, *, worker: str, lease_s: float) -> Claim | None:
    token = str(uuid.uuid4())
    now = utcnow()
    running = _RUNNING
    taken = _changed(session,
        update(Attempt)
        .where(Attempt.id == attempt_id, Attempt.status == QUEUED,
               # One running attempt per author (the partial unique index also refuses a racing second one).
               ~exists().where(running.user_id == Attempt.user_id, running.status == RUNNING))
        .values(status=RUNNING, claim_token=token, claimed_by=worker[:200], started_at=now,
                lease_expires_at=now + timedelta(seconds=lease_s), tries=Attempt.tries + 1))
    if taken != 1:
        return None
    session.add(GradingClaim(attempt_id=attempt_id, token=token, worker=worker[:200], claimed_at=now))
    row = session.execute(select(Attempt.problem_id, Attempt.code, Attempt.mode, Attempt.tries, Attempt.user_id)
                          .where(Attempt.id == attempt_id)).one()
    mode: Mode = "run" if row.mode == "run" else "submit"
    return Claim(attempt_id, token, worker, row.problem_id, row.code, mode, row.tries, row.user_id)


# -- keeping it ----------------------------------------------------------------------------------------------

def renew(factory: sessionmaker[Session], held: Claim, *, lease_s: float) -> bool:
    """Extend the lease; False once the claim is no longer current (the grader should stop caring)."""
    with session_scope(factory) as session:
        return _changed(session,
            update(Attempt)
            .where(Attempt.id == held.attempt_id, Attempt.claim_token == held.token,
                   # running, or done under a regrade's claim (a finished grading's token holds no lease)
                   or_(Attempt.status == RUNNING, Attempt.lease_expires_at.is_not(None)))
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))) == 1


class Keeper:
    """Renews a claim from a thread while its grading runs, for at most `max_hold_s` (the longest a grading of
    the problem can legitimately take). A grader that hangs past that, or dies, stops renewing: the lease
    expires and the sweeper queues the attempt again."""

    def __init__(self, factory: sessionmaker[Session], held: Claim, *, lease_s: float, max_hold_s: float):
        self.factory, self.held, self.lease_s, self.max_hold_s = factory, held, lease_s, max_hold_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"gradax-lease-{held.attempt_id}")

    def __enter__(self) -> Keeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_hold_s
        interval = max(0.2, self.lease_s / 4)
        while not self._stop.wait(interval):
            if time.monotonic() > deadline:
                log.error("attempt %d: grading still running after %.0f s; its claim is left to expire",
                          self.held.attempt_id, self.max_hold_s)
                return
            try:
                if not renew(self.factory, self.held, lease_s=self.lease_s):
                    log.warning("attempt %d: claim lost while grading (lease expired?)", self.held.attempt_id)
                    return
            except Exception:
                log.exception("attempt %d: could not renew the claim; retrying", self.held.attempt_id)


# -- ending it -----------------------------------------------------------------------------------------------

def finish(factory: sessionmaker[Session], held: Claim, report: Report, *, problem_hash: str | None,
           retries: int, retryable: bool = True, cost_s: float | None = None) -> Finish:
    """Store the report under this claim, or queue the attempt again after a grader-side failure.

    The author is charged `cost_s` seconds of grading time (backend.charged_s: the CPU time of the
    submission's own run), or
    the time the claim was held when the caller cannot say. A report the database refuses (a value no column
    takes) is stored reduced to its verdict and counts. When the database itself fails (down, locked) this
    raises: the claim is no longer renewed, its lease expires, and the sweeper queues the attempt again.
    """
    try:
        return _finish(factory, held, report, problem_hash=problem_hash, retries=retries, retryable=retryable,
                       cost_s=cost_s)
    except OperationalError:
        raise
    except (SQLAlchemyError, ValueError, TypeError, OverflowError) as exc:
        log.exception("attempt %d: the report could not be stored; storing its verdict only", held.attempt_id)
        return _finish(factory, held, _reduced(report, exc), problem_hash=problem_hash, retries=retries,
                       retryable=retryable, cost_s=cost_s)


def _finish(factory: sessionmaker[Session], held: Claim, report: Report, *, problem_hash: str | None,
            retries: int, retryable: bool, cost_s: float | None) -> Finish:
    now = utcnow()
    with session_scope(factory) as session:
        # The fence: this UPDATE matches only while our claim is current, and from here to the commit it holds
        # the row (PostgreSQL row lock; SQLite's write lock), so no sweeper or other grader can slip in.
        fenced = _changed(session,
            update(Attempt)
            .where(Attempt.id == held.attempt_id, Attempt.claim_token == held.token, Attempt.status == RUNNING)
            .values(lease_expires_at=None))
        if fenced != 1:
            _close_claim(session, held.token, Finish.STALE.value, now, cost_s=cost_s)
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
            _close_claim(session, held.token, Finish.RETRY.value, now, cost_s=cost_s)
            return Finish.RETRY
        if problem_hash is not None:
            attempt.problem_hash = problem_hash
        record_report(session=session, attempt=attempt, report=report)
        _close_claim(session, held.token, Finish.DONE.value, now, cost_s=cost_s)
        session.flush()  # a value the database refuses fails here, inside finish's fallback
    return Finish.DONE


def _reduced(report: Report, exc: Exception) -> Report:
    """The verdict and counts of a report whose details could not be stored, with a message that says so."""

    def number(value: object, default: float = 0.0) -> float:
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else default

    verdict = report.verdict if isinstance(report.verdict, Verdict) else Verdict.INTERNAL_ERROR
    return Report(problem=str(report.problem)[:64], verdict=verdict, mode="run" if report.mode == "run" else "submit",
                  score=number(report.score), passed=int(number(report.passed)), total=int(number(report.total)),
                  message=f"The details of this grading could not be stored ({type(exc).__name__}); "
                          "only its verdict was kept.")


def release(factory: sessionmaker[Session], held: Claim, *, outcome: str = "interrupted") -> bool:
    """Put a claim's attempt back in the queue (a graceful stop). False when the claim is no longer current:
    if its grading finished meanwhile its result stands; if it finishes later its write is fenced out."""
    with session_scope(factory) as session:
        return _requeue(session, held.attempt_id, held.token, outcome, utcnow(), charge=False) == 1


def _requeue(session: Session, attempt_id: int, token: str | None, outcome: str, now: datetime, *,
             charge: bool, where: ColumnElement[bool] | None = None) -> int:
    moved = _changed(session,
        update(Attempt)
        .where(Attempt.id == attempt_id, _token_is(token), Attempt.status == RUNNING,
               *([where] if where is not None else []))
        .values(status=QUEUED, claim_token=None, lease_expires_at=None, enqueued_at=None))
    if moved and token is not None:
        _close_claim(session, token, outcome, now, charge=charge)
    return moved


def _close_claim(session: Session, token: str, outcome: str, when: datetime, *, cost_s: float | None = None,
                 charge: bool = True) -> None:
    if not charge:
        cost = 0.0
    elif cost_s is not None:
        cost = max(0.0, cost_s)
    else:  # e.g. a grader that died: the time it held the slot
        claimed_at = session.scalar(select(GradingClaim.claimed_at).where(GradingClaim.token == token))
        cost = max(0.0, (when - claimed_at).total_seconds()) if claimed_at is not None else 0.0
    session.execute(update(GradingClaim).where(GradingClaim.token == token, GradingClaim.outcome.is_(None))
                    .values(outcome=outcome, finished_at=when, cost_s=cost)
                    .execution_options(synchronize_session=False))


# -- recovering ----------------------------------------------------------------------------------------------

@dataclass
class RecoverResult:
    requeued: list[int]
    abandoned: list[int]


def recover(factory: sessionmaker[Session], *, max_tries: int) -> RecoverResult:
    """At the start of the embedded server, the only grader of its database: every `running` row belongs to a
    process that is gone. Each goes back to `queued`, or, past `max_tries` interrupted gradings (say it takes
    the whole server down), is stored as internal_error."""
    result = RecoverResult([], [])
    with factory() as session:
        stale = session.execute(select(Attempt.id, Attempt.claim_token, Attempt.tries)
                                .where(Attempt.status == RUNNING)).all()
    now = utcnow()
    for attempt_id, token, tries in stale:
        with session_scope(factory) as session:
            if tries >= max_tries:
                if _abandon(session, attempt_id, token, tries, now):
                    result.abandoned.append(attempt_id)
            elif _requeue(session, attempt_id, token, "expired", now, charge=True):
                result.requeued.append(attempt_id)
    if result.requeued or result.abandoned:
        log.warning("start-up: requeued %d attempts left running by a previous process, abandoned %d",
                    len(result.requeued), len(result.abandoned))
    return result


@dataclass
class SweepResult:
    expired: list[int]  # running attempts whose lease ran out, now queued again
    abandoned: list[int]  # attempts that killed their graders too often: reported as internal_error
    resend: list[int]  # queued attempts whose message is due to be sent (again)


def sweep(factory: sessionmaker[Session], *, requeue_after_s: float, max_tries: int,
          orphan_after_s: float = 900.0, resend: bool = True) -> SweepResult:
    """Expire dead claims and (with `resend`) pick the queued attempts whose message to send again. Safe to run
    in many processes at once."""
    now = utcnow()
    result = SweepResult([], [], [])
    # Running without a lease: left by an old in-process server (before leases there); given much longer.
    expired_clause = or_(Attempt.lease_expires_at < now,
                         and_(Attempt.lease_expires_at.is_(None), Attempt.claim_token.is_(None),
                              Attempt.started_at < now - timedelta(seconds=orphan_after_s)))
    with factory() as session:
        expired = session.execute(select(Attempt.id, Attempt.claim_token, Attempt.tries).where(
            Attempt.status == RUNNING, expired_clause)).all()
    for attempt_id, token, tries in expired:
        with session_scope(factory) as session:
            if tries >= max_tries:
                # An attempt whose grading took its grader down again and again is not retried for ever.
                if _abandon(session, attempt_id, token, tries, now):
                    result.abandoned.append(attempt_id)
            elif _requeue(session, attempt_id, token, "expired", now, charge=True, where=expired_clause):
                result.expired.append(attempt_id)
    if result.expired:
        log.warning("re-queued %d attempts whose grader stopped renewing its claim: %s", len(result.expired),
                    result.expired)
    if not resend:
        return result

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
    report = internal_error(attempt.problem_id, "run" if attempt.mode == "run" else "submit",
                            f"Grading was interrupted {tries} times (the grading worker stopped); "
                            "this is not your fault. Please submit again.")
    record_report(session=session, attempt=attempt, report=report)
    if token is not None:
        _close_claim(session, token, "expired", now)
    log.error("attempt %d: abandoned after %d interrupted gradings", attempt_id, tries)
    return True


# -- regrading -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Regraded:
    attempt_id: int
    user_id: int
    old: str | None  # the verdict before
    new: str  # the verdict now stored (the old one when the regrade failed on the grader's side)
    stored: bool  # False: the grader failed (internal_error); the previous result stands


def regrade(factory: sessionmaker[Session], attempt_id: int, grade: Callable[[Claim], Report], *,
            problem_hash: str, worker: str, lease_s: float, max_hold_s: float) -> Regraded | None:
    """Grade a finished attempt again and store the new report, keeping the verdict before in
    `previous_verdict`. The attempt stays `done` (its author sees the old result until the new one is stored);
    a claim on it keeps two regrades from racing, and the write is fenced by that claim. None when the attempt
    is not finished or another regrade holds it. A grader-side failure keeps the previous result."""
    token = str(uuid.uuid4())
    now = utcnow()
    with session_scope(factory) as session:
        taken = _changed(session,
            update(Attempt)
            .where(Attempt.id == attempt_id, Attempt.status == DONE,
                   or_(Attempt.lease_expires_at.is_(None), Attempt.lease_expires_at < now))
            .values(claim_token=token, lease_expires_at=now + timedelta(seconds=lease_s)))
        if taken != 1:
            return None
        session.add(GradingClaim(attempt_id=attempt_id, token=token, worker=worker[:200], claimed_at=now))
        row = session.execute(select(Attempt.problem_id, Attempt.code, Attempt.mode, Attempt.tries,
                                     Attempt.user_id, Attempt.verdict).where(Attempt.id == attempt_id)).one()
    mode: Mode = "run" if row.mode == "run" else "submit"
    held = Claim(attempt_id, token, worker, row.problem_id, row.code, mode, row.tries, row.user_id)
    try:
        with Keeper(factory, held, lease_s=lease_s, max_hold_s=max_hold_s):
            report = grade(held)
    except BaseException:
        with session_scope(factory) as session:
            _end_regrade(session, held, "failed")
        raise
    with session_scope(factory) as session:
        fenced = _changed(session,
            update(Attempt).where(Attempt.id == attempt_id, Attempt.claim_token == token, Attempt.status == DONE)
            .values(lease_expires_at=None))
        if fenced != 1:
            _close_claim(session, token, Finish.STALE.value, utcnow(), charge=False)
            return None
        if report.verdict == Verdict.INTERNAL_ERROR:
            log.error("regrade of attempt %d failed on the grader's side; its result stands: %s", attempt_id,
                      report.message)
            _close_claim(session, token, "failed", utcnow(), charge=False)
            return Regraded(attempt_id, row.user_id, row.verdict, row.verdict or "", stored=False)
        attempt = session.get(Attempt, attempt_id, populate_existing=True)
        assert attempt is not None
        store_report(attempt, report)
        attempt.problem_hash = problem_hash
        attempt.previous_verdict, attempt.regraded_at = row.verdict, utcnow()
        _close_claim(session, token, "regraded", utcnow(), charge=False)
    return Regraded(attempt_id, row.user_id, row.verdict, report.verdict.value, stored=True)


def _end_regrade(session: Session, held: Claim, outcome: str) -> None:
    _changed(session, update(Attempt).where(Attempt.id == held.attempt_id, Attempt.claim_token == held.token)
             .values(lease_expires_at=None))
    _close_claim(session, held.token, outcome, utcnow(), charge=False)


# -- helpers -------------------------------------------------------------------------------------------------

def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE matched: the atomic test-and-set every step above relies on."""
    result = session.execute(statement.execution_options(synchronize_session=False))
    return cast(CursorResult[Any], result).rowcount


def _token_is(token: str | None) -> ColumnElement[bool]:
    return Attempt.claim_token.is_(None) if token is None else Attempt.claim_token == token
