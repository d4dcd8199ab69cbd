"""The grade rule as a pure function: late factors, windows, extensions, best-Submit choice, the standing line."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from graders.grade_rule import (
    AssignmentGrade,
    Extension,
    LatePolicy,
    Override,
    PenaltyKind,
    Submission,
    Timing,
    Window,
    days_late,
    extended_window,
    grade_problem,
    late_factor,
    standing_text,
    timing,
)

DUE = datetime(2026, 3, 6, 22, 59)
WINDOW = Window(due=DUE, opens=DUE - timedelta(days=10), late_until=DUE + timedelta(days=3))
PER_DAY = LatePolicy(PenaltyKind.PER_DAY, 0.2)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(("late_by", "days"), [
    (timedelta(0), 0), (timedelta(seconds=1), 1), (timedelta(hours=24), 1), (timedelta(hours=24, seconds=1), 2),
    (timedelta(days=3), 3),
])
def test_lateness_counts_started_days(late_by: timedelta, days: int) -> None:
    assert days_late(late_by) == days


def test_late_factors() -> None:
    assert late_factor(2 * HOUR, PER_DAY) == pytest.approx(0.8)
    assert late_factor(25 * HOUR, PER_DAY) == pytest.approx(0.6)
    assert late_factor(timedelta(days=9), PER_DAY) == 0.0  # never below zero
    assert late_factor(timedelta(days=9), LatePolicy(PenaltyKind.FACTOR, 0.5)) == 0.5
    assert late_factor(timedelta(days=9), LatePolicy()) == 1.0
    assert late_factor(-HOUR, PER_DAY) == 1.0


def test_timing_edges_are_inclusive() -> None:
    assert WINDOW.opens is not None and WINDOW.late_until is not None
    assert timing(WINDOW.opens - timedelta(seconds=1), WINDOW) == Timing.BEFORE_OPENS
    assert timing(WINDOW.opens, WINDOW) == Timing.ON_TIME
    assert timing(DUE, WINDOW) == Timing.ON_TIME
    assert timing(DUE + timedelta(seconds=1), WINDOW) == Timing.LATE
    assert timing(WINDOW.late_until, WINDOW) == Timing.LATE
    assert timing(WINDOW.late_until + timedelta(seconds=1), WINDOW) == Timing.AFTER_LATE_UNTIL
    no_late = Window(due=DUE)
    assert timing(DUE + timedelta(seconds=1), no_late) == Timing.AFTER_LATE_UNTIL


def test_an_extension_moves_due_and_keeps_the_late_period() -> None:
    moved = extended_window(WINDOW, Extension(due=DUE + timedelta(days=2)))
    assert (moved.due, moved.late_until, moved.opens) == (DUE + timedelta(days=2), DUE + timedelta(days=5),
                                                          WINDOW.opens)
    own = extended_window(WINDOW, Extension(due=DUE + timedelta(days=2), late_until=DUE + timedelta(days=2)))
    assert own.late_until == DUE + timedelta(days=2)
    assert extended_window(Window(due=DUE), Extension(due=DUE + HOUR)).late_until is None
    assert extended_window(WINDOW, None) is WINDOW


def sub(i: int, at: datetime, score: float) -> Submission:
    return Submission(i, at, score)


def test_best_points_after_penalty_count_and_ties_go_to_the_earliest() -> None:
    subs = [sub(1, DUE - HOUR, 0.5), sub(2, DUE + 2 * HOUR, 1.0), sub(3, DUE + 30 * HOUR, 1.0)]
    g = grade_problem(subs, window=WINDOW, policy=PER_DAY, max_points=10)
    assert (g.points, g.counted, g.late_by, g.penalty) == (8.0, subs[1], 2 * HOUR, 0.2)
    tie = [sub(5, DUE + HOUR, 1.0), sub(4, DUE - HOUR, 0.8)]
    assert grade_problem(tie, window=WINDOW, policy=PER_DAY, max_points=10).counted == tie[1]


def test_outside_the_window_nothing_counts() -> None:
    assert WINDOW.opens is not None and WINDOW.late_until is not None
    subs = [sub(1, WINDOW.opens - HOUR, 1.0), sub(2, WINDOW.late_until + HOUR, 1.0)]
    g = grade_problem(subs, window=WINDOW, policy=PER_DAY, max_points=10)
    assert (g.points, g.counted, g.ignored_before_opens, g.ignored_after_late_until) == (0.0, None, 1, 1)


def test_an_override_replaces_the_points_and_keeps_the_computed_ones() -> None:
    g = grade_problem([sub(1, DUE, 0.5)], window=WINDOW, policy=PER_DAY, max_points=10,
                      override=Override(7.5, "partial credit"))
    assert (g.points, g.computed_points, g.overridden, g.override_comment) == (7.5, 5.0, True, "partial credit")


def test_scores_outside_0_1_are_clamped() -> None:
    assert grade_problem([sub(1, DUE, 1.7)], window=WINDOW, policy=PER_DAY, max_points=10).points == 10.0


def test_the_standing_line() -> None:
    late = grade_problem([sub(1, DUE + 2 * HOUR, 1.0)], window=WINDOW, policy=PER_DAY, max_points=10)
    empty = grade_problem([], window=WINDOW, policy=PER_DAY, max_points=10)
    assert standing_text(AssignmentGrade({"a": late})) == "8/10, submitted 2 h late, -20 %"
    assert standing_text(AssignmentGrade({"a": late, "b": empty})) == "8/20, submitted 2 h late, -20 %"
    assert standing_text(AssignmentGrade({"b": empty})) == "0/10, no Submit counted yet"
    fixed = grade_problem([sub(1, DUE, 0.5)], window=WINDOW, policy=PER_DAY, max_points=10, override=Override(6))
    assert standing_text(AssignmentGrade({"a": fixed})) == "6/10, adjusted by your instructor"
    assert standing_text(AssignmentGrade({"a": fixed}), staff=True) == "6/10, overridden"
    assert standing_text(AssignmentGrade({"a": grade_problem([sub(1, DUE, 1 / 3)], window=WINDOW, policy=PER_DAY,
                                                             max_points=10)})) == "3.33/10"
