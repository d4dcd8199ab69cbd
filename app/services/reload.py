"""Reading the problem bank and the courses from disk again, and mirroring them into the database.

The one way the web app picks up files changed on disk (the instructor's Reload button, `POST
/problems/reload`, an uploaded problem): problems first, then courses, whose assignments may only name
problems that exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.grading.preparation import BankPreparation
from app.services.courses import sync_courses
from app.services.problems import sync_problems
from graders.course import CourseBank
from graders.problem import ProblemBank


@dataclass
class BankStats:
    problems: int
    problem_changes: dict[str, int]  # added, updated, unavailable, errors (sync_problems)
    course_changes: dict[str, int]  # courses, assignments, changed, unavailable, errors (sync_courses)

    def summary(self) -> str:
        p, c = self.problem_changes, self.course_changes
        return (f"Reloaded: {self.problems} problems ({p['added']} new, {p['updated']} changed, "
                f"{p['unavailable']} gone), {p['errors']} files with errors; {c['courses']} courses "
                f"with {c['assignments']} assignments ({c['changed']} changed), "
                f"{c['errors']} course files with errors.")


def mirror(*, session: Session, problems: ProblemBank, courses: CourseBank) -> BankStats:
    """The banks as they are loaded, into the database (at start, and after every reload)."""
    problem_changes = sync_problems(session=session, bank=problems)
    return BankStats(len(problems.problems), problem_changes, sync_courses(session=session, bank=courses))


def reload_from_disk(*, session: Session, problems: ProblemBank, courses: CourseBank,
                     preparation: BankPreparation | None = None) -> BankStats:
    """Re-read problems/ and courses/ and mirror them; files with errors are reported and skipped. New and
    changed problems are then prepared in the background (`preparation`)."""
    problems.reload()
    courses.reload(problem_ids=set(problems.problems))
    stats = mirror(session=session, problems=problems, courses=courses)
    if preparation is not None:
        preparation.refresh()
    return stats
