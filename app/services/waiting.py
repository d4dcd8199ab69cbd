"""What a student waiting for a verdict is told: where their attempt is in the queue and about how long it takes.

Read-only: the attempt's state is written by app/grading/claims.py alone. The queue is the attempts table
(claims.claim_next takes the oldest queued attempt that may start), so the attempts ahead of one are the queued
ones older than it. The estimate assumes the server keeps `slots` gradings going (app/grading/capacity.py) and
that each takes as long as the recent ones did: the attempts ahead and those running share the slots, then this
one takes as long as its problem's recent gradings.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Attempt, AttemptStatus, GradingClaim, utcnow

QUEUED, RUNNING, DONE = AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value, AttemptStatus.DONE.value
# Recent gradings that set the pace, and the pace before there are any.
RECENT = 50
RECENT_WINDOW = timedelta(hours=1)
DEFAULT_GRADING_S = 1.0
# Graders counted (queue workers) when the slots are not known in this process.
WORKERS_WINDOW = timedelta(minutes=10)
PACE_TTL_S = 5.0
# (database, what) -> (monotonic time read, value): the pace of recent gradings, the graders seen
_pace: dict[tuple[str, str], tuple[float, float]] = {}
_pace_lock = threading.Lock()


@dataclass(frozen=True)
class Waiting:
    # queued (waiting for a grading slot), preparing (its problem's reference outputs and compile profile are
    # being computed: its first use), running (its code runs), done
    phase: str
    queue_position: int | None = None  # 1: next to start; None once it started
    estimate_s: float | None = None  # about this many seconds until the verdict; None when unknown


def waiting_for(session: Session, attempt: Attempt, *, slots: int | None, preparing: bool = False) -> Waiting:
    """The phase, queue position and estimate of `attempt` now. `slots`: gradings the server runs at once (None:
    count the graders seen lately); `preparing`: its problem is not prepared yet."""
    if attempt.status == DONE:
        return Waiting(DONE)
    if preparing:  # how long a problem's first preparation takes is not known from gradings: no estimate
        return Waiting("preparing", _place(session, attempt) if attempt.status == QUEUED else None, None)
    own = _typical_grading_s(session, attempt.problem_id)
    if attempt.status == RUNNING:
        started = attempt.started_at or utcnow()
        left = own - (utcnow() - started).total_seconds()
        return Waiting("running", None, round(left, 1) if left > 0 else None)
    # One count for both: the queued attempts older than this one, and those running.
    ahead, running = session.execute(select(
        func.count().filter(Attempt.status == QUEUED, Attempt.id < attempt.id),
        func.count().filter(Attempt.status == RUNNING)).where(Attempt.status.in_((QUEUED, RUNNING)))).one()
    width = slots if slots is not None and slots > 0 else int(_remembered(session, "graders",
                                                                        lambda: _graders_seen(session)))
    # This attempt starts once all but width-1 of those ahead or running have finished, width at a time.
    before = max(0, running + ahead - width + 1)
    pace = _typical_grading_s(session, None)
    estimate = math.ceil(before / width) * pace + own
    return Waiting(QUEUED, ahead + 1, round(estimate, 1))


def _place(session: Session, attempt: Attempt) -> int:
    """1 + the queued attempts older than this one (claims.claim_next takes the oldest that may start)."""
    return 1 + (session.scalar(select(func.count()).select_from(Attempt)
                               .where(Attempt.status == QUEUED, Attempt.id < attempt.id)) or 0)


def _typical_grading_s(session: Session, problem_id: str | None) -> float:
    """Typical seconds from claim to stored report of the recent gradings (of this problem, if given), read at
    most every PACE_TTL_S: hundreds of students waiting re-read their attempts every 2 s."""
    return _remembered(session, f"pace:{problem_id or ''}", lambda: _read_typical_grading_s(session, problem_id))


def _remembered(session: Session, what: str, read: Callable[[], float]) -> float:
    """`read()`, or its value from less than PACE_TTL_S ago for the same database."""
    key = (str(session.get_bind().engine.url), what)
    with _pace_lock:
        known = _pace.get(key)
        if known is not None and time.monotonic() - known[0] < PACE_TTL_S:
            return known[1]
    value = read()
    with _pace_lock:
        if len(_pace) > 4096:  # problem ids come from the bank, but keep it bounded whatever happens
            _pace.clear()
        _pace[key] = (time.monotonic(), value)
    return value


def _read_typical_grading_s(session: Session, problem_id: str | None) -> float:
    query = (select(GradingClaim.claimed_at, GradingClaim.finished_at)
             .where(GradingClaim.outcome == "done", GradingClaim.finished_at > utcnow() - RECENT_WINDOW)
             .order_by(GradingClaim.id.desc()).limit(RECENT))
    if problem_id is not None:
        query = query.join(Attempt, Attempt.id == GradingClaim.attempt_id).where(Attempt.problem_id == problem_id)
    spans = [_seconds(a, b) for a, b in session.execute(query).all() if b is not None]
    if not spans:
        return DEFAULT_GRADING_S if problem_id is None else _typical_grading_s(session, None)
    # The median: a problem's first grading also prepared it (a minute, say) and must not set the pace.
    return statistics.median(spans)


def _graders_seen(session: Session) -> int:
    seen = session.scalar(select(func.count(func.distinct(GradingClaim.worker)))
                          .where(GradingClaim.claimed_at > utcnow() - WORKERS_WINDOW)) or 0
    return max(1, seen)


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())
