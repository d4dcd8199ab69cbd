"""The score a resource link reports for a student: what the gradebook says, never a number of our own.

A problem link reports the student's best Submit score on that problem (0..1) scaled to the link's points.
An assignment link reports the assignment's effective points (the course's grade rule: deadlines, late
penalty, extensions, overrides). None means "nothing to report yet" (no graded Submit).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti.models import LtiResourceLink
from app.models import Attempt, AttemptStatus
from graders.report import Verdict


def effective_score(session: Session, link: LtiResourceLink, user_id: int) -> tuple[float | None, float]:
    """(score given or None, score maximum) for this student on this link."""
    if link.target_kind == "problem":
        maximum = link.score_maximum or 1.0
        best = session.scalar(
            select(Attempt.score).where(Attempt.user_id == user_id, Attempt.problem_id == link.target,
                                        Attempt.mode == "submit", Attempt.status == AttemptStatus.DONE.value,
                                        Attempt.verdict != Verdict.INTERNAL_ERROR.value, Attempt.score.is_not(None))
            .order_by(Attempt.score.desc()).limit(1))
        return (None if best is None else round(best * maximum, 6)), maximum
    raise ValueError(f"unknown resource link target kind {link.target_kind!r}")
