"""The one place where a change of a student's effective score on an assignment is observed.

`app.services.grades.refresh_scores` recomputes a student's effective score (grade rule, extension, override)
whenever something it depends on changes: a Submit is graded, a regrade stores new reports, an instructor sets
or removes an override or an extension, an assignment file changes (dates, points, problems). When the result
differs from the stored `AssignmentScore`, it calls `score_changed` once per (assignment, student), inside the
transaction that made the change, before it commits.

Listeners (e.g. LMS grade passback) register with `add_score_listener`, in every process that grades (the
server and `gradax worker`s). A listener runs inside that transaction: it must not do network I/O or commit;
it should record what to do (an outbox row in the same session) and do it after the commit. A listener that
raises is logged and skipped: grading a Submit (or saving an override) never fails because of a listener, and
the other listeners still hear of the change. (A database error inside a listener still fails the transaction:
keep listeners small and certain.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

log = logging.getLogger("gradax.scores")


@dataclass(frozen=True)
class ScoreChange:
    course_id: str
    assignment_id: int  # Assignment.id (the row, not the file's slug)
    user_id: int
    old_points: float | None  # None: no score was stored before (first Submit, or first computation)
    points: float  # the new effective points (after late rule and override)
    max_points: float
    late: bool
    overridden: bool
    submitted_at: datetime | None  # the newest counted Submit (naive UTC)
    reason: str  # "graded", "regrade", "override", "extension", "assignment", "membership"


ScoreListener = Callable[[Session, ScoreChange], None]
_listeners: list[ScoreListener] = []


def add_score_listener(listener: ScoreListener) -> None:
    """Call `listener(session, change)` on every effective-score change in this process (idempotent)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_score_listener(listener: ScoreListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def score_changed(session: Session, change: ScoreChange) -> None:
    """The hook point: every effective-score change passes through here."""
    log.info("score: assignment %d user %d: %s -> %s (%s)", change.assignment_id, change.user_id,
             change.old_points, change.points, change.reason)
    for listener in list(_listeners):
        try:
            listener(session, change)
        except Exception:
            log.exception("score listener %r failed on assignment %d user %d; the score change is kept",
                          listener, change.assignment_id, change.user_id)
