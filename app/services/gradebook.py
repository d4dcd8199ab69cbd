"""The gradebook (students x assignments), its CSV exports, and a student's own standing.

Everything is computed from the attempts by the grade rule at the time of asking (a few queries per
assignment), so the gradebook can never disagree with what the student sees.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.models import Assignment, Course, User
from app.services.courses import list_assignments
from app.services.grades import (
    ExtensionInfo,
    assignments_with_problem,
    extensions_for,
    grade_students,
    student_members,
    window_of,
)
from graders.grade_rule import AssignmentGrade, ProblemGrade, extended_window, standing_text


def iso(when: datetime | None) -> str:
    """Naive UTC as ISO 8601 with a Z, the form the API and the CSV files use (browsers show local time)."""
    return when.isoformat(timespec="seconds") + "Z" if when is not None else ""


def safe_cell(value: str) -> str:
    """A text cell of every CSV gradax writes (gradebooks, the instructor's grade sheet)."""
    # A cell starting with = + - @ (or a tab or carriage return before one) is run as a formula by
    # spreadsheets (CSV injection). Usernames cannot start with those today; emails and comments can.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Cell:
    assignment: Assignment
    grade: AssignmentGrade

    def to_json(self) -> dict[str, object]:
        g = self.grade
        return {"points": g.points, "max_points": g.max_points, "late": g.late, "overridden": g.overridden,
                "submitted_at": iso(g.submitted_at) or None, "standing": standing_text(g, staff=True)}


@dataclass(frozen=True)
class Row:
    student: User
    cells: dict[int, Cell]  # by assignment id

    @property
    def total(self) -> float:
        return round(sum(c.grade.points for c in self.cells.values()), 4)


@dataclass(frozen=True)
class Gradebook:
    course: Course
    assignments: list[Assignment]
    rows: list[Row]

    @property
    def max_total(self) -> float:
        return round(sum(a.max_points for a in self.assignments), 4)

    def to_json(self) -> dict[str, object]:
        return {
            "course": self.course.id,
            "assignments": [{"id": a.slug, "title": a.title, "due": iso(a.due), "max_points": a.max_points}
                            for a in self.assignments],
            "students": [{"username": r.student.username, "email": r.student.email, "total": r.total,
                          "scores": {c.assignment.slug: c.to_json() for c in r.cells.values()}} for r in self.rows],
            "max_total": self.max_total,
        }


def course_gradebook(session: Session, course: Course, assignments: list[Assignment] | None = None) -> Gradebook:
    assignments = assignments if assignments is not None else list_assignments(session, course.id)
    students = student_members(session, course.id)
    per_assignment = {a.id: grade_students(session, a, students) for a in assignments}
    rows = [Row(s, {a.id: Cell(a, per_assignment[a.id][s.id]) for a in assignments}) for s in students]
    return Gradebook(course, assignments, rows)


def course_csv(book: Gradebook) -> str:
    """One row per student; per assignment its points, submitted_at (UTC), late and overridden; then the total."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["username", "email"]
    for a in book.assignments:
        header += [f"{a.slug}", f"{a.slug} submitted_at", f"{a.slug} late", f"{a.slug} overridden"]
    writer.writerow([*header, "total", "max_total"])
    for row in book.rows:
        line = [safe_cell(row.student.username), safe_cell(row.student.email or "")]
        for a in book.assignments:
            g = row.cells[a.id].grade
            line += [_num(g.points), iso(g.submitted_at), _yes(g.late), _yes(g.overridden)]
        writer.writerow([*line, _num(row.total), _num(book.max_total)])
    return out.getvalue()


def assignment_csv(session: Session, assignment: Assignment, book: Gradebook) -> str:
    """One row per student: points per problem, total, when the counted Submit came, how late and what it cost,
    the override (points before it, comment) and the extension."""
    students = [r.student for r in book.rows]
    extensions = extensions_for(session, assignment, students)
    problems = [p.problem_id for p in assignment.problems]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["username", "email", *problems, "points", "max_points", "submitted_at", "late", "late_hours",
                     "penalty", "overridden", "override_comment", "computed_points", "extension_due"])
    for row in book.rows:
        g = row.cells[assignment.id].grade
        late_by = g.late_by
        comments = "; ".join(f"{pid}: {p.override_comment}" for pid, p in g.problems.items() if p.overridden)
        ext: ExtensionInfo | None = extensions.get(row.student.id)
        writer.writerow([
            safe_cell(row.student.username), safe_cell(row.student.email or ""),
            *[_num(g.problems[pid].points) for pid in problems],
            _num(g.points), _num(g.max_points), iso(g.submitted_at), _yes(g.late),
            f"{late_by.total_seconds() / 3600:.2f}" if late_by is not None else "",
            f"{g.penalty:g}" if g.late else "", _yes(g.overridden), safe_cell(comments),
            _num(round(sum(p.computed_points for p in g.problems.values()), 4)),
            iso(ext.due) if ext is not None else "",
        ])
    return out.getvalue()


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@dataclass(frozen=True)
class Standing:
    """One assignment as its student sees it."""

    assignment: Assignment
    grade: AssignmentGrade
    extension: ExtensionInfo | None

    @property
    def due(self) -> datetime:
        return self.extension.due if self.extension is not None else self.assignment.due

    @property
    def late_until(self) -> datetime | None:
        if self.extension is None:
            return self.assignment.late_until
        return extended_window(window_of(self.assignment), self.extension.rule()).late_until

    @property
    def text(self) -> str:
        return standing_text(self.grade)

    @property
    def staff_text(self) -> str:
        return standing_text(self.grade, staff=True)

    def problem(self, problem_id: str) -> ProblemGrade:
        return self.grade.problems[problem_id]

    def to_json(self) -> dict[str, object]:
        a, g = self.assignment, self.grade
        return {
            "id": a.slug, "course": a.course_id, "title": a.title, "opens": iso(a.opens) or None,
            "due": iso(self.due), "late_until": iso(self.late_until) or None,
            "assignment_due": iso(a.due), "extended": self.extension is not None,
            "late_penalty": {"kind": a.penalty_kind, "value": a.penalty_value},
            "points": g.points, "max_points": g.max_points, "late": g.late, "overridden": g.overridden,
            "submitted_at": iso(g.submitted_at) or None, "standing": self.text,
            "problems": [{"id": p.problem_id, "max_points": p.points, "points": g.problems[p.problem_id].points,
                          "late": g.problems[p.problem_id].late, "penalty": g.problems[p.problem_id].penalty,
                          "overridden": g.problems[p.problem_id].overridden,
                          "override_comment": g.problems[p.problem_id].override_comment or None}
                         for p in a.problems],
        }


def standings(session: Session, student: User, assignments: list[Assignment]) -> list[Standing]:
    out = []
    for a in assignments:
        grade = grade_students(session, a, [student])[student.id]
        ext = extensions_for(session, a, [student]).get(student.id)
        out.append(Standing(a, grade, ext))
    return out


def problem_standings(session: Session, student: User, problem_id: str) -> list[Standing]:
    """The assignments of the student's courses that hold the problem, with their standing (the problem page)."""
    return standings(session, student, assignments_with_problem(session, problem_id, student.id))
