"""The score a resource link reports for a student: what the gradebook says, never a number of our own.

- An assignment link reports the assignment's effective points (app/services/grades.py: the grade rule with
  deadlines, late penalty, extensions and overrides) out of its points.
- A problem link in an LMS course mapped to a gradax course whose assignment holds the problem reports that
  problem's effective points in the assignment, by the same rule.
- Any other problem link (practice) reports the best Submit score (0..1) scaled to the link's points.
None means "nothing to report yet": no graded Submit and no override.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lti.models import LtiResourceLink
from app.models import Assignment, AssignmentProblem, Attempt, AttemptStatus
from app.services.grades import effective_score as assignment_score
from graders.report import Verdict


def _assignment(session: Session, target: str) -> Assignment | None:
    course_id, _, slug = target.partition("/")
    return session.scalar(select(Assignment).where(Assignment.course_id == course_id, Assignment.slug == slug))


def effective_score(session: Session, link: LtiResourceLink, user_id: int) -> tuple[float | None, float]:
    """(score given or None, score maximum) for this student on this link."""
    if link.target_kind == "assignment":
        assignment = _assignment(session, link.target)
        if assignment is None:
            return None, link.score_maximum or 1.0
        grade = assignment_score(session, assignment_id=assignment.id, user_id=user_id)
        reported = grade.submitted_at is not None or grade.overridden
        return (round(grade.points, 6) if reported else None), grade.max_points
    if link.target_kind != "problem":
        raise ValueError(f"unknown resource link target kind {link.target_kind!r}")
    course_id = link.context.course_id if link.context is not None else None
    if course_id is not None:
        holder = session.scalar(select(Assignment).join(AssignmentProblem)
                                .where(Assignment.course_id == course_id, Assignment.available.is_(True),
                                       AssignmentProblem.problem_id == link.target)
                                .order_by(Assignment.due, Assignment.id).limit(1))
        if holder is not None:
            problem = assignment_score(session, assignment_id=holder.id, user_id=user_id).problems[link.target]
            reported = problem.counted is not None or problem.overridden
            return (round(problem.points, 6) if reported else None), problem.max_points
    maximum = link.score_maximum or 1.0
    best = session.scalar(
        select(Attempt.score).where(Attempt.user_id == user_id, Attempt.problem_id == link.target,
                                    Attempt.mode == "submit", Attempt.status == AttemptStatus.DONE.value,
                                    Attempt.verdict != Verdict.INTERNAL_ERROR.value, Attempt.score.is_not(None))
        .order_by(Attempt.score.desc()).limit(1))
    return (None if best is None else round(best * maximum, 6)), maximum
