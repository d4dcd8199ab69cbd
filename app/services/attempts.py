"""Attempts: validate and store a submission (queued first), record its grading, update progress."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import AppError, not_found
from app.models import ACTIVE_STATUSES, Attempt, AttemptStatus, AttemptTest, Problem, User, utcnow
from app.observability import observe_report
from app.services.grades import refresh_scores
from app.services.problems import get_or_create_progress
from graders.report import Report, Verdict

RATE_WINDOW = timedelta(minutes=1)


def check_code(code: str, max_bytes: int) -> None:
    try:
        size = len(code.encode("utf-8"))
    except UnicodeEncodeError as exc:  # lone surrogates survive JSON decoding but are not text
        raise AppError(400, "the code is not valid UTF-8 text") from exc
    if size > max_bytes:
        raise AppError(413, f"the code is {size} bytes; the limit is {max_bytes} bytes")
    if "\x00" in code:  # Python refuses such source; PostgreSQL cannot store it
        line = code.count("\n", 0, code.index("\x00")) + 1
        raise AppError(400, f"the code contains a NUL character (U+0000) on line {line}; "
                            "Python source cannot contain one")


def check_rate(*, session: Session, user: User, per_minute: int) -> None:
    """At most `per_minute` attempts per user in any sliding minute; 429 says when to come back."""
    if per_minute <= 0:
        return
    since = utcnow() - RATE_WINDOW
    recent = session.scalars(
        select(Attempt.created_at).where(Attempt.user_id == user.id, Attempt.created_at > since)
        .order_by(Attempt.created_at.desc()).limit(per_minute)
    ).all()
    if len(recent) < per_minute:
        return
    oldest = recent[-1]
    wait = max(1, math.ceil((oldest + RATE_WINDOW - utcnow()).total_seconds()))
    raise AppError(429, f"too many submissions: at most {per_minute} per minute; retry in {wait} s",
                   headers={"Retry-After": str(wait)})


def check_backlog(*, session: Session, max_backlog: int) -> None:
    """503 with Retry-After once `max_backlog` attempts wait for grading: a deadline burst is told to come back
    instead of growing the queue (and everyone's wait) without bound. The bound is soft: simultaneous posts
    can each pass the count just below it."""
    if max_backlog <= 0:
        return
    backlog = session.scalar(select(func.count()).select_from(Attempt)
                             .where(Attempt.status == AttemptStatus.QUEUED.value)) or 0
    if backlog < max_backlog:
        return
    # When the backlog will be back under the bound at the pace of the last minute (at least 1 s, at most 2 min).
    finished = session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.status == AttemptStatus.DONE.value, Attempt.finished_at > utcnow() - RATE_WINDOW)) or 0
    per_second = finished / RATE_WINDOW.total_seconds()
    wait = 30 if per_second <= 0 else min(120, max(1, math.ceil((backlog - max_backlog + 1) / per_second)))
    raise AppError(503, f"the grader is busy: {backlog} attempts are waiting; retry in {wait} s",
                   headers={"Retry-After": str(wait)})


def create_attempt(*, session: Session, user: User, problem_id: str, code: str, mode: Literal["submit", "run"],
                   max_code_bytes: int, per_minute: int, max_backlog: int = 0) -> Attempt:
    """Store the attempt as `queued` and commit before anyone grades it. Raises AppError."""
    check_code(code, max_code_bytes)
    problem = session.get(Problem, problem_id)
    if problem is None or not problem.available:
        raise not_found(f"problem {problem_id!r}")
    check_rate(session=session, user=user, per_minute=per_minute)
    check_backlog(session=session, max_backlog=max_backlog)
    active = session.scalar(select(Attempt.id).where(
        Attempt.user_id == user.id, Attempt.problem_id == problem_id, Attempt.status.in_(ACTIVE_STATUSES)))
    if active is not None:
        raise AppError(409, f"attempt {active} on this problem is still being graded; wait for its result")
    attempt = Attempt(user_id=user.id, problem_id=problem_id, mode=mode, code=code,
                      status=AttemptStatus.QUEUED.value, problem_hash=problem.content_hash, tries=0)
    session.add(attempt)
    progress = get_or_create_progress(session=session, user_id=user.id, problem_id=problem_id)
    progress.draft = code
    if mode == "submit":
        progress.attempts += 1
    try:
        session.commit()
    except IntegrityError as exc:  # the partial unique index: a concurrent post got in first
        session.rollback()
        raise AppError(409, "another attempt on this problem is still being graded; wait for its result") from exc
    return attempt


def get_attempt_for(*, session: Session, user: User, attempt_id: int) -> Attempt:
    """The caller's own attempt (staff may read anyone's); someone else's id is simply not found."""
    return get_visible_attempt(session=session, user_id=user.id, is_staff=user.is_staff, attempt_id=attempt_id)


def get_visible_attempt(*, session: Session, user_id: int, is_staff: bool, attempt_id: int) -> Attempt:
    """`get_attempt_for` without a User row, for long polls that keep no session open while they wait."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or (attempt.user_id != user_id and not is_staff):
        raise not_found(f"submission {attempt_id}")
    return attempt


def list_attempts(*, session: Session, user: User, problem_id: str | None, offset: int,
                  limit: int) -> tuple[list[Attempt], int]:
    where = [Attempt.user_id == user.id]
    if problem_id is not None:
        where.append(Attempt.problem_id == problem_id)
    count = session.scalar(select(func.count()).select_from(Attempt).where(*where)) or 0
    rows = session.scalars(select(Attempt).where(*where).order_by(Attempt.id.desc()).offset(offset).limit(limit))
    return list(rows), count


def record_report(*, session: Session, attempt: Attempt, report: Report) -> None:
    """Store a finished report on the attempt, its per-test rows, and the user's progress."""
    attempt.status = AttemptStatus.DONE.value
    store_report(attempt, report)
    observe_report(mode=attempt.mode, verdict=report.verdict.value, created_at=attempt.created_at,
                   finished_at=attempt.finished_at)
    if attempt.mode == "submit" and report.verdict != Verdict.INTERNAL_ERROR:
        progress = get_or_create_progress(session=session, user_id=attempt.user_id, problem_id=attempt.problem_id)
        progress.best_score = max(progress.best_score, report.score)
        if report.verdict == Verdict.ACCEPTED and not progress.solved:
            progress.solved, progress.solved_at = True, utcnow()
        # In the same transaction as the report: a course score and what listeners record never disagree with it.
        refresh_scores(session, user_id=attempt.user_id, problem_id=attempt.problem_id, reason="graded")


def store_report(attempt: Attempt, report: Report) -> None:
    """The report's fields and per-test rows on the attempt (first grading and instructor regrades alike)."""
    attempt.verdict = report.verdict.value
    attempt.score, attempt.passed, attempt.total = report.score, report.passed, report.total
    attempt.report = report.to_json_dict()
    attempt.finished_at = utcnow()
    attempt.tests = [
        AttemptTest(position=i, name=t.name, public=t.public, status=t.status.value,
                    stage=t.stage[:32] if t.stage else None, message=t.message[:4000],
                    max_abs_error=_finite(t.max_abs_error), max_rel_error=_finite(t.max_rel_error),
                    duration_ms=t.duration_ms)
        for i, t in enumerate(report.tests)
    ]


def _finite(x: float | None) -> float | None:
    # PostgreSQL takes NaN/Inf floats but JSON and SQLite round-trips do not agree on them.
    return x if x is None or math.isfinite(x) else None
