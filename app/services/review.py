"""Instructor review of one student: every attempt on the course's problems (code, report, time, late flag),
the draft in their editor, and a diff between two attempts."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import not_found
from app.models import Assignment, Attempt, Progress, User
from app.services.gradebook import Standing, standings
from app.services.grades import window_of
from graders.grade_rule import Timing, extended_window, timing


@dataclass(frozen=True)
class AttemptView:
    attempt: Attempt
    timing: Timing | None  # Submits only: before opens, on time, late, after late_until
    late_by: timedelta | None
    counted: bool  # the Submit the problem's points come from

    @property
    def late(self) -> bool:
        return self.timing == Timing.LATE


@dataclass(frozen=True)
class ProblemReview:
    problem_id: str
    max_points: float
    attempts: list[AttemptView]  # newest first
    draft: str | None


@dataclass(frozen=True)
class AssignmentReview:
    standing: Standing
    problems: list[ProblemReview]


def student_review(session: Session, student: User, assignments: list[Assignment]) -> list[AssignmentReview]:
    out = []
    for standing in standings(session, student, assignments):
        a = standing.assignment
        window = extended_window(window_of(a), standing.extension.rule() if standing.extension else None)
        problems = []
        for ref in a.problems:
            grade = standing.grade.problems[ref.problem_id]
            counted_id = grade.counted.attempt_id if grade.counted is not None else None
            views = []
            for attempt in session.scalars(select(Attempt).where(
                    Attempt.user_id == student.id, Attempt.problem_id == ref.problem_id).order_by(Attempt.id.desc())):
                when = timing(attempt.created_at, window) if attempt.mode == "submit" else None
                late_by = attempt.created_at - window.due if when == Timing.LATE else None
                views.append(AttemptView(attempt, when, late_by, attempt.id == counted_id))
            progress = session.get(Progress, (student.id, ref.problem_id))
            problems.append(ProblemReview(ref.problem_id, ref.points, views, progress.draft if progress else None))
        out.append(AssignmentReview(standing, problems))
    return out


def student_attempt(session: Session, student: User, attempt_id: int, problem_ids: set[str]) -> Attempt:
    """One of the student's attempts on the course's problems (anything else is not found)."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.user_id != student.id or attempt.problem_id not in problem_ids:
        raise not_found(f"attempt {attempt_id} of {student.username!r} in this course")
    return attempt


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "del", "hunk", "ctx", "file"
    text: str


def code_diff(old: str, new: str, old_label: str, new_label: str) -> list[DiffLine]:
    """A unified diff of two attempts' code, line by line with its kind (for colouring)."""
    lines = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), old_label, new_label, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append(DiffLine(kind, line))
    return lines
