"""The grade rule: how a student's Submits on an assignment problem become points. Pure: no clock, no database.

The rule (docs/courses.md states it for students and instructors):
1. Only graded Submits count: Runs, attempts still being graded and attempts the grader failed on
   (`internal_error`) never do. A Submit's time is when the server stored it (`submitted_at`), not when its
   grading finished, so a slow grader never makes anyone late.
2. A Submit before `opens` counts for nothing, and so does one after `late_until` (which is `due` when the
   assignment takes no late work). The student's extension, when there is one, replaces `due` and
   `late_until` (see `extended_window`).
3. On time (at or before `due`): points = score x the problem's points, where score is the fraction of
   test points passed (0..1).
4. Late (after `due`, at or before `late_until`): the same points times the late factor:
   - `per_day` p: every started day late takes p off (2 h late: 1 day; 25 h late: 2 days), never below 0;
   - `factor` f: a late Submit earns f times its points, however late;
   - `none`: late work within `late_until` earns full points.
5. The best Submit counts (most points after the penalty); among equals, the earliest.
6. An instructor's override replaces the computed points (the computed value is kept for the record).
All times are naive UTC datetimes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

DAY = timedelta(days=1)


class PenaltyKind(enum.StrEnum):
    NONE = "none"
    PER_DAY = "per_day"
    FACTOR = "factor"


@dataclass(frozen=True)
class LatePolicy:
    kind: PenaltyKind = PenaltyKind.NONE
    # per_day: the fraction taken off per started day late (0 < value <= 1);
    # factor: the fraction of the points a late Submit keeps (0 <= value <= 1).
    value: float = 0.0

    def describe(self) -> str:
        if self.kind == PenaltyKind.PER_DAY:
            return f"-{self.value:.0%} per started day late"
        if self.kind == PenaltyKind.FACTOR:
            return f"late Submits earn {self.value:.0%} of their points"
        return "no late penalty"


@dataclass(frozen=True)
class Window:
    """When Submits count: from `opens` (None: always open) to `due`, late up to `late_until` (None: = due)."""

    due: datetime
    opens: datetime | None = None
    late_until: datetime | None = None

    @property
    def closes(self) -> datetime:
        return max(self.due, self.late_until) if self.late_until is not None else self.due


@dataclass(frozen=True)
class Extension:
    """A student's own due date (and optionally their own late_until)."""

    due: datetime
    late_until: datetime | None = None


def extended_window(window: Window, extension: Extension | None) -> Window:
    """The window with the student's extension: `due` becomes the extension's; `late_until` becomes the
    extension's when it gives one, else the late period keeps its length after the new due date."""
    if extension is None:
        return window
    if extension.late_until is not None:
        late_until: datetime | None = max(extension.late_until, extension.due)
    elif window.late_until is not None:
        late_until = extension.due + max(window.late_until - window.due, timedelta(0))
    else:
        late_until = None
    return replace(window, due=extension.due, late_until=late_until)


@dataclass(frozen=True)
class Submission:
    attempt_id: int
    submitted_at: datetime
    score: float  # fraction of the test points passed, 0..1


class Timing(enum.StrEnum):
    BEFORE_OPENS = "before_opens"
    ON_TIME = "on_time"
    LATE = "late"
    AFTER_LATE_UNTIL = "after_late_until"


def timing(submitted_at: datetime, window: Window) -> Timing:
    if window.opens is not None and submitted_at < window.opens:
        return Timing.BEFORE_OPENS
    if submitted_at <= window.due:
        return Timing.ON_TIME
    if submitted_at <= window.closes:
        return Timing.LATE
    return Timing.AFTER_LATE_UNTIL


def days_late(late_by: timedelta) -> int:
    """Started days: 1 second to 24 hours late is 1 day."""
    return max(0, math.ceil(late_by / DAY))


def late_factor(late_by: timedelta, policy: LatePolicy) -> float:
    """The fraction of its points a Submit keeps when it is `late_by` after the due date."""
    if late_by <= timedelta(0) or policy.kind == PenaltyKind.NONE:
        return 1.0
    if policy.kind == PenaltyKind.FACTOR:
        return min(1.0, max(0.0, policy.value))
    return max(0.0, 1.0 - policy.value * days_late(late_by))


@dataclass(frozen=True)
class Override:
    points: float
    comment: str = ""


@dataclass(frozen=True)
class ProblemGrade:
    """What one problem of an assignment earns a student, and why."""

    max_points: float
    # The points that count: the override's when there is one, else `computed_points`.
    points: float
    computed_points: float
    counted: Submission | None = None  # the Submit the computed points come from
    late_by: timedelta | None = None  # how late that Submit was (None: on time, or none counted)
    penalty: float = 0.0  # fraction taken off that Submit's points for lateness (0.2 = -20 %)
    overridden: bool = False
    override_comment: str = ""
    ignored_before_opens: int = 0
    ignored_after_late_until: int = 0

    @property
    def late(self) -> bool:
        return self.late_by is not None


def grade_problem(submissions: Iterable[Submission], *, window: Window, policy: LatePolicy, max_points: float,
                  override: Override | None = None) -> ProblemGrade:
    """Points for one problem from the student's graded Submits on it (the rule in this module's docstring).
    `window` already includes the student's extension (`extended_window`)."""
    best: tuple[float, datetime, int] | None = None  # (points, submitted_at, attempt_id): max points, earliest
    best_sub: Submission | None = None
    best_factor = 1.0
    before = after = 0
    for sub in submissions:
        when = timing(sub.submitted_at, window)
        if when == Timing.BEFORE_OPENS:
            before += 1
            continue
        if when == Timing.AFTER_LATE_UNTIL:
            after += 1
            continue
        factor = late_factor(sub.submitted_at - window.due, policy)
        points = max(0.0, min(1.0, sub.score)) * max_points * factor
        if best is None or points > best[0] or (points == best[0] and (sub.submitted_at, sub.attempt_id) < best[1:]):
            best, best_sub, best_factor = (points, sub.submitted_at, sub.attempt_id), sub, factor
    computed = round(best[0], 4) if best is not None else 0.0
    late_by = (best_sub.submitted_at - window.due) if best_sub is not None and best_sub.submitted_at > window.due \
        else None
    return ProblemGrade(
        max_points=max_points,
        points=round(override.points, 4) if override is not None else computed,
        computed_points=computed, counted=best_sub, late_by=late_by,
        penalty=round(1.0 - best_factor, 4) if late_by is not None else 0.0,
        overridden=override is not None, override_comment=override.comment if override is not None else "",
        ignored_before_opens=before, ignored_after_late_until=after,
    )


@dataclass(frozen=True)
class AssignmentGrade:
    problems: dict[str, ProblemGrade]

    @property
    def points(self) -> float:
        return round(sum(g.points for g in self.problems.values()), 4)

    @property
    def max_points(self) -> float:
        return round(sum(g.max_points for g in self.problems.values()), 4)

    @property
    def late(self) -> bool:
        """Some problem's counted Submit was late (overridden problems count as their override, not late)."""
        return any(g.late and not g.overridden for g in self.problems.values())

    @property
    def overridden(self) -> bool:
        return any(g.overridden for g in self.problems.values())

    @property
    def submitted_at(self) -> datetime | None:
        """The newest of the counted Submits: when the student's standing was last earned."""
        times = [g.counted.submitted_at for g in self.problems.values() if g.counted is not None]
        return max(times) if times else None

    @property
    def late_by(self) -> timedelta | None:
        lates = [g.late_by for g in self.problems.values() if g.late_by is not None and not g.overridden]
        return max(lates) if lates else None

    @property
    def penalty(self) -> float:
        """The largest late penalty among the counted Submits (for the one-line standing)."""
        return max((g.penalty for g in self.problems.values() if not g.overridden), default=0.0)


def standing_text(grade: AssignmentGrade, *, staff: bool = False) -> str:
    """One line for a student: "8/10, submitted 2 h late, -20 %", "6/10, adjusted by your instructor",
    "0/10, no Submit counted yet" (`staff`: the same line as staff read it, "6/10, overridden")."""
    text = f"{_num(grade.points)}/{_num(grade.max_points)}"
    if grade.late_by is not None:
        text += f", submitted {duration_text(grade.late_by)} late"
        if grade.penalty > 0:
            text += f", -{grade.penalty:.0%}".replace("%", " %")
    if grade.overridden:
        text += ", overridden" if staff else ", adjusted by your instructor"
    elif grade.submitted_at is None:
        text += ", no Submit counted yet"
    return text


def duration_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds < 3600:
        return f"{max(1, round(seconds / 60))} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{seconds / 86400:.1f} days"


def _num(x: float) -> str:
    return f"{x:g}" if abs(x - round(x, 2)) < 1e-9 else f"{x:.2f}"
