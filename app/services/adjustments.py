"""What staff change by hand on a student's assignment: extensions (a later due date) and score overrides.

Both record who and when. An override keeps its history (every change is a new row with the value before it);
the student sees the override's comment. Both recompute the student's effective score in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import AppError, not_found
from app.models import Assignment, CourseMember, CourseRole, Extension, ScoreOverride, User, utcnow
from app.services.grades import STAFF_SOURCE, ExtensionInfo, effective_score, extensions_for, refresh_assignment
from graders.course import EARLIEST, LATEST


def course_student(session: Session, course_id: str, username: str) -> User:
    """A student of the course, by username (404 otherwise: staff cannot grade non-students)."""
    user = session.scalar(select(User).where(User.username == username))
    member = session.get(CourseMember, (course_id, user.id)) if user is not None else None
    if user is None or member is None or member.role != CourseRole.STUDENT.value:
        raise not_found(f"student {username!r} in course {course_id!r}")
    return user


# --- extensions ----------------------------------------------------------------------------------------------------

def set_extension(session: Session, *, assignment: Assignment, student: User, due: datetime,
                  late_until: datetime | None, reason: str, by: User) -> Extension:
    """Give the student their own due date (naive UTC), replacing any staff extension they had. Commits."""
    for when in (due, late_until):
        if when is not None and not EARLIEST <= when <= LATEST:
            raise AppError(422, f"{when.isoformat()} is outside the years {EARLIEST.year}-{LATEST.year}")
    if due <= assignment.due:
        raise AppError(422, "an extension's due date must be after the assignment's due date "
                            f"({assignment.due.isoformat()}Z)")
    if late_until is not None and late_until < due:
        raise AppError(422, "late_until must not be before the extension's due date")
    ext = session.scalar(select(Extension).where(Extension.assignment_id == assignment.id,
                                                 Extension.user_id == student.id, Extension.source == STAFF_SOURCE))
    if ext is None:
        ext = Extension(assignment_id=assignment.id, user_id=student.id, source=STAFF_SOURCE)
        session.add(ext)
    ext.due, ext.late_until, ext.reason = due, late_until, reason.strip()[:2000]
    ext.granted_by, ext.granted_at = by.id, utcnow()
    session.flush()
    refresh_assignment(session, assignment, reason="extension", user_ids=[student.id])
    session.commit()
    return ext


def remove_extension(session: Session, *, assignment: Assignment, student: User) -> None:
    """Take away the staff extension (an extension in the assignment file, if any, applies again). Commits."""
    ext = session.scalar(select(Extension).where(Extension.assignment_id == assignment.id,
                                                 Extension.user_id == student.id, Extension.source == STAFF_SOURCE))
    if ext is None:
        raise not_found(f"an extension of {student.username!r} set by staff on {assignment.slug!r}")
    session.delete(ext)
    session.flush()
    refresh_assignment(session, assignment, reason="extension", user_ids=[student.id])
    session.commit()


def list_extensions(session: Session, assignment: Assignment) -> list[tuple[User, ExtensionInfo]]:
    """Every extension in force on the assignment (staff ones and the file's), by username."""
    students = list(session.scalars(
        select(User).join(CourseMember, CourseMember.user_id == User.id)
        .where(CourseMember.course_id == assignment.course_id, CourseMember.role == CourseRole.STUDENT.value)
        .order_by(User.username)))
    found = extensions_for(session, assignment, students)
    return [(u, found[u.id]) for u in students if u.id in found]


# --- overrides -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OverrideEntry:
    id: int
    problem_id: str
    points: float | None  # None: this entry removed the override
    previous_points: float | None
    comment: str
    set_by: str | None
    set_at: datetime


def set_override(session: Session, *, assignment: Assignment, student: User, problem_id: str,
                 points: float | None, comment: str, by: User) -> ScoreOverride:
    """Replace the student's points on one problem of the assignment (None removes the override). The comment is
    required when setting: the student reads it. Records who, when and the effective points before. Commits."""
    ref = next((p for p in assignment.problems if p.problem_id == problem_id), None)
    if ref is None:
        raise not_found(f"problem {problem_id!r} in assignment {assignment.slug!r}")
    comment = comment.strip()
    if points is not None:
        if not 0 <= points <= ref.points:
            raise AppError(422, f"points must be between 0 and {ref.points:g} (the problem's points)")
        if not comment:
            raise AppError(422, "say why in a comment: the student sees it")
    elif _current(session, assignment.id, student.id, problem_id) is None:
        raise not_found(f"an override of {student.username!r} on {problem_id!r}")
    before = effective_score(session, assignment_id=assignment.id, user_id=student.id).problems[problem_id].points
    row = ScoreOverride(assignment_id=assignment.id, user_id=student.id, problem_id=problem_id, points=points,
                        previous_points=before, comment=comment[:4000], set_by=by.id, set_at=utcnow())
    session.add(row)
    session.flush()
    refresh_assignment(session, assignment, reason="override", user_ids=[student.id])
    session.commit()
    return row


def _current(session: Session, assignment_id: int, user_id: int, problem_id: str) -> ScoreOverride | None:
    row = session.scalar(select(ScoreOverride).where(
        ScoreOverride.assignment_id == assignment_id, ScoreOverride.user_id == user_id,
        ScoreOverride.problem_id == problem_id).order_by(ScoreOverride.id.desc()).limit(1))
    return row if row is not None and row.points is not None else None


def override_history(session: Session, assignment_id: int, user_id: int) -> list[OverrideEntry]:
    """Every override change for the student on the assignment, newest first."""
    rows = session.execute(
        select(ScoreOverride, User.username).outerjoin(User, User.id == ScoreOverride.set_by)
        .where(ScoreOverride.assignment_id == assignment_id, ScoreOverride.user_id == user_id)
        .order_by(ScoreOverride.id.desc())).all()
    return [OverrideEntry(r.id, r.problem_id, r.points, r.previous_points, r.comment, by, r.set_at)
            for r, by in rows]
