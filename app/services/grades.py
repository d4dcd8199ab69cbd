"""Effective scores: the grade rule (graders/grade_rule.py) applied to a student's Submits on an assignment, with
their extension and the instructor's overrides; kept current in `assignment_scores`, changes published through
app/services/score_events.py.

`effective_score` answers "what does this student have on this assignment now". `refresh_scores` is called by
everything that can change the answer (grading, regrades, overrides, extensions, assignment files) and is the
only writer of `AssignmentScore`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    Assignment,
    AssignmentProblem,
    AssignmentScore,
    Attempt,
    AttemptStatus,
    Course,
    CourseMember,
    CourseRole,
    Extension,
    ScoreOverride,
    User,
    utcnow,
)
from app.services.score_events import ScoreChange, score_changed
from graders import grade_rule
from graders.grade_rule import AssignmentGrade, LatePolicy, PenaltyKind, Submission, Window
from graders.report import Verdict

STAFF_SOURCE = "staff"


def window_of(assignment: Assignment) -> Window:
    return Window(due=assignment.due, opens=assignment.opens, late_until=assignment.late_until)


def policy_of(assignment: Assignment) -> LatePolicy:
    return LatePolicy(PenaltyKind(assignment.penalty_kind), assignment.penalty_value)


@dataclass(frozen=True)
class ExtensionInfo:
    """The extension that applies to a student, and where it came from."""

    due: datetime
    late_until: datetime | None
    reason: str
    source: str  # "file" (the assignment file) or the Extension row's source ("staff", ...)
    granted_by: str | None  # username; None for the file
    granted_at: datetime | None

    def rule(self) -> grade_rule.Extension:
        return grade_rule.Extension(due=self.due, late_until=self.late_until)


def _file_extension(assignment: Assignment, username: str) -> ExtensionInfo | None:
    entry = (assignment.file_extensions or {}).get(username)
    if not entry:
        return None
    late = entry.get("late_until")
    return ExtensionInfo(due=datetime.fromisoformat(entry["due"]),
                         late_until=datetime.fromisoformat(late) if late else None,
                         reason=str(entry.get("reason") or ""), source="file", granted_by=None, granted_at=None)


def extensions_for(session: Session, assignment: Assignment, users: Iterable[User]) -> dict[int, ExtensionInfo]:
    """The extension that applies to each of `users`: a staff (browser/API) one, else the file's."""
    users = list(users)
    rows = session.execute(
        select(Extension, User.username).outerjoin(User, User.id == Extension.granted_by)
        .where(Extension.assignment_id == assignment.id, Extension.user_id.in_([u.id for u in users]))
        .order_by(Extension.granted_at)).all()
    staff = {ext.user_id: ExtensionInfo(due=ext.due, late_until=ext.late_until, reason=ext.reason,
                                        source=ext.source, granted_by=by, granted_at=ext.granted_at)
             for ext, by in rows}
    out: dict[int, ExtensionInfo] = {}
    for user in users:
        found = staff.get(user.id) or _file_extension(assignment, user.username)
        if found is not None:
            out[user.id] = found
    return out


def current_overrides(session: Session, assignment_id: int,
                      user_ids: Iterable[int]) -> dict[tuple[int, str], ScoreOverride]:
    """The override in force per (user, problem): the newest history row, unless it removed the override."""
    newest: dict[tuple[int, str], ScoreOverride] = {}
    for row in session.scalars(select(ScoreOverride).where(
            ScoreOverride.assignment_id == assignment_id, ScoreOverride.user_id.in_(list(user_ids)))
            .order_by(ScoreOverride.id)):
        newest[(row.user_id, row.problem_id)] = row
    return {key: row for key, row in newest.items() if row.points is not None}


def counted_submissions(session: Session, problem_ids: list[str],
                        user_ids: Iterable[int]) -> dict[tuple[int, str], list[Submission]]:
    """Graded Submits (not Runs, not unfinished, not the grader's own failures) per (user, problem)."""
    out: dict[tuple[int, str], list[Submission]] = defaultdict(list)
    rows = session.execute(select(Attempt.id, Attempt.user_id, Attempt.problem_id, Attempt.created_at, Attempt.score)
                           .where(Attempt.problem_id.in_(problem_ids), Attempt.user_id.in_(list(user_ids)),
                                  Attempt.mode == "submit", Attempt.status == AttemptStatus.DONE.value,
                                  Attempt.verdict != Verdict.INTERNAL_ERROR.value)
                           .order_by(Attempt.id))
    for attempt_id, user_id, problem_id, created_at, score in rows:
        out[(user_id, problem_id)].append(Submission(attempt_id, created_at, float(score or 0.0)))
    return out


def grade_students(session: Session, assignment: Assignment, users: Iterable[User]) -> dict[int, AssignmentGrade]:
    """Each student's grade on the assignment, problem by problem, in a handful of queries however many."""
    users = list(users)
    if not users:
        return {}
    user_ids = [u.id for u in users]
    problems = list(assignment.problems)
    submissions = counted_submissions(session, [p.problem_id for p in problems], user_ids)
    overrides = current_overrides(session, assignment.id, user_ids)
    extensions = extensions_for(session, assignment, users)
    window, policy = window_of(assignment), policy_of(assignment)
    grades: dict[int, AssignmentGrade] = {}
    for user in users:
        ext = extensions.get(user.id)
        mine = grade_rule.extended_window(window, ext.rule() if ext is not None else None)
        per_problem = {}
        for ref in problems:
            override = overrides.get((user.id, ref.problem_id))
            per_problem[ref.problem_id] = grade_rule.grade_problem(
                submissions.get((user.id, ref.problem_id), []), window=mine, policy=policy, max_points=ref.points,
                override=grade_rule.Override(override.points or 0.0, override.comment) if override else None)
        grades[user.id] = AssignmentGrade(per_problem)
    return grades


def effective_score(session: Session, *, assignment_id: int, user_id: int) -> AssignmentGrade:
    """A student's effective score on an assignment now: the best Submit per problem under the grade rule,
    with their extension and late penalty, overrides in place of computed points. `.points`, `.max_points`,
    `.late`, `.overridden`, `.submitted_at`, and per problem `.problems[problem_id]`."""
    assignment = session.get(Assignment, assignment_id)
    user = session.get(User, user_id)
    if assignment is None or user is None:
        raise LookupError(f"no assignment {assignment_id} or user {user_id}")
    return grade_students(session, assignment, [user])[user_id]


def _differs(row: AssignmentScore, grade: AssignmentGrade) -> bool:
    """A change worth publishing: the points, the points possible, or the late or overridden flags. (A new Submit
    that earns the same points is not one.)"""
    return (not math.isclose(row.points, grade.points, abs_tol=1e-9)
            or not math.isclose(row.max_points, grade.max_points, abs_tol=1e-9)
            or row.late != grade.late or row.overridden != grade.overridden)


def store_grades(session: Session, assignment: Assignment, grades: dict[int, AssignmentGrade],
                 reason: str) -> list[ScoreChange]:
    """Write the grades to `assignment_scores` and publish the ones that changed (see score_events)."""
    if not grades:
        return []
    stored = {row.user_id: row for row in session.scalars(select(AssignmentScore).where(
        AssignmentScore.assignment_id == assignment.id, AssignmentScore.user_id.in_(list(grades))))}
    changes = []
    for user_id, grade in grades.items():
        row = stored.get(user_id)
        old: float | None = None
        if row is None:
            row = AssignmentScore(assignment_id=assignment.id, user_id=user_id)
            session.add(row)
            # A student who never submitted and has no override has nothing to report yet.
            publish = grade.submitted_at is not None or grade.overridden
        else:
            publish, old = _differs(row, grade), row.points
        if publish or old is None or row.submitted_at != grade.submitted_at:
            row.points, row.max_points = grade.points, grade.max_points
            row.late, row.overridden, row.submitted_at = grade.late, grade.overridden, grade.submitted_at
            row.updated_at = utcnow()
        if publish:
            changes.append(ScoreChange(course_id=assignment.course_id, assignment_id=assignment.id, user_id=user_id,
                                       old_points=old, points=grade.points, max_points=grade.max_points,
                                       late=grade.late, overridden=grade.overridden,
                                       submitted_at=grade.submitted_at, reason=reason))
    session.flush()
    for change in changes:
        score_changed(session, change)
    return changes


def student_members(session: Session, course_id: str, user_ids: Iterable[int] | None = None) -> list[User]:
    query = (select(User).join(CourseMember, CourseMember.user_id == User.id)
             .where(CourseMember.course_id == course_id, CourseMember.role == CourseRole.STUDENT.value))
    if user_ids is not None:
        query = query.where(User.id.in_(list(user_ids)))
    return list(session.scalars(query.order_by(User.username)))


# The first key of the advisory locks that serialize score refreshes (PostgreSQL), the assignment's id the second.
SCORES_LOCK_SPACE = 0x6778  # "gx"


def lock_scores(session: Session, assignment_ids: Iterable[int]) -> None:
    """Until this transaction ends, no other one refreshes these assignments' scores (PostgreSQL).

    Two score refreshes of one student commit at once on PostgreSQL (a grading and an instructor's override, a
    regrade, a reload of the assignment file): without it, each computes the score from what it sees (not the
    other's uncommitted change), and the one that commits last stores a score that misses the other's change.
    After the lock, READ COMMITTED lets every later query see what the holder committed. The locks are per
    assignment, held for the few milliseconds until the transaction commits; a caller that refreshes several
    takes them all first, in id order, so two transactions never wait for each other in a circle (taking one
    again in the same transaction is free). SQLite has one writer at a time: nothing to do there.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for assignment_id in sorted(set(assignment_ids)):
        session.execute(select(func.pg_advisory_xact_lock(SCORES_LOCK_SPACE, assignment_id)))


def refresh_assignment(session: Session, assignment: Assignment, *, reason: str,
                       user_ids: Iterable[int] | None = None) -> list[ScoreChange]:
    """Recompute (and publish changes of) the scores of the assignment's students, or of `user_ids` among them."""
    lock_scores(session, [assignment.id])
    users = student_members(session, assignment.course_id, user_ids)
    return store_grades(session, assignment, grade_students(session, assignment, users), reason)


def assignments_with_problem(session: Session, problem_id: str, user_id: int | None = None) -> list[Assignment]:
    """Available assignments that hold the problem; with `user_id`, only in courses where that user is a student."""
    query = (select(Assignment).join(AssignmentProblem, AssignmentProblem.assignment_id == Assignment.id)
             .join(Course, Course.id == Assignment.course_id)
             .where(AssignmentProblem.problem_id == problem_id, Assignment.available.is_(True),
                    Course.available.is_(True)))
    if user_id is not None:
        query = query.join(CourseMember, (CourseMember.course_id == Assignment.course_id)
                           & (CourseMember.user_id == user_id)).where(CourseMember.role == CourseRole.STUDENT.value)
    return list(session.scalars(query.order_by(Assignment.due, Assignment.id)))


def refresh_scores(session: Session, *, user_id: int, problem_id: str, reason: str) -> list[ScoreChange]:
    """After one of the user's Submits on the problem was graded (or regraded): refresh every assignment of
    theirs that holds the problem. A user in no course costs one query."""
    changes: list[ScoreChange] = []
    assignments = assignments_with_problem(session, problem_id, user_id)
    lock_scores(session, [a.id for a in assignments])
    for assignment in assignments:
        changes += refresh_assignment(session, assignment, reason=reason, user_ids=[user_id])
    return changes


def refresh_problem(session: Session, problem_id: str, *, reason: str) -> list[ScoreChange]:
    """After a regrade of the problem: refresh every assignment that holds it, for all its students."""
    changes: list[ScoreChange] = []
    assignments = assignments_with_problem(session, problem_id)
    lock_scores(session, [a.id for a in assignments])
    for assignment in assignments:
        changes += refresh_assignment(session, assignment, reason=reason)
    return changes


def overridden_users(session: Session, problem_id: str) -> set[int]:
    """Users with an override in force on the problem in some assignment (a regrade lists them as overridden)."""
    newest: dict[tuple[int, int], ScoreOverride] = {}
    for row in session.scalars(select(ScoreOverride).where(ScoreOverride.problem_id == problem_id)
                               .order_by(ScoreOverride.id)):
        newest[(row.assignment_id, row.user_id)] = row
    return {user_id for (_a, user_id), row in newest.items() if row.points is not None}
