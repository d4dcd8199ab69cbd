"""Course and assignment files: the worked example loads; mistakes are reported by file, line and field (also by
`gradax check`); times are read in the course's time zone and kept in UTC; per-test points weigh the score."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from graders.cases import build_cases, points_score
from graders.course import CourseBank, CourseFileError, load_course, parse_assignment
from graders.grade_rule import PenaltyKind
from graders.problem import parse_problem

ROOT = Path(__file__).resolve().parents[2]
PROBLEM_IDS = {p.stem for p in (ROOT / "problems").glob("*.yaml")}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_example_course_loads_with_utc_times() -> None:
    bank = CourseBank(ROOT / "courses", PROBLEM_IDS)
    assert bank.errors == {}
    course = bank.get("example")
    assert course is not None and course.spec.timezone == "Europe/Zurich" and course.spec.instructors == ["prof"]
    hw1 = course.assignments["hw1"]
    # 23:59 in Zurich in March (UTC+1) is 22:59 UTC
    assert hw1.window.due == datetime(2026, 3, 6, 22, 59)
    assert hw1.window.late_until == datetime(2026, 3, 9, 22, 59)
    assert (hw1.policy.kind, hw1.policy.value, hw1.max_points) == (PenaltyKind.PER_DAY, 0.2, 20.0)
    [alice] = hw1.extensions
    assert (alice.student, alice.due) == ("alice", datetime(2026, 3, 8, 22, 59))
    assert course.assignments["hw2"].policy.kind == PenaltyKind.FACTOR


def test_times_with_an_offset_and_summer_time() -> None:
    course = load_course(ROOT / "courses" / "example")
    text = "title: T\ndue: 2026-07-01 12:00\nlate_until: '2026-07-02T12:00:00Z'\nproblems: [{id: nnx-mlp}]\n"
    loaded = parse_assignment(text, Path("a/assignments/tt.yaml"), course_id="example", zone=course.zone)
    assert loaded.window.due == datetime(2026, 7, 1, 10, 0)  # Zurich summer time is UTC+2
    assert loaded.window.late_until == datetime(2026, 7, 2, 12, 0)


BROKEN: list[tuple[str, str, str]] = [
    ("due: 2026-03-06\n", ":2: due:", "has no time of day"),
    ("due: soon\n", ":2: due:", "is not a date and time"),
    ("due: 2026-03-06 23:59\nopens: 2026-03-07 09:00\n", ":3: opens:", "opens must be before due"),
    ("due: 2026-03-06 23:59\nlate_until: 2026-03-05 09:00\n", ":3: late_until:", "must not be before due"),
    ("due: 2026-03-06 23:59\nlate_penalty: {per_day: 0.2}\n", ":3: late_penalty:", "needs late_until"),
    ("due: 2026-03-06 23:59\nlate_until: 2026-03-08 09:00\nlate_penalty: {per_day: 1.5}\n", ":4: late_penalty.per_day",
     "less than or equal to 1"),
    ("due: 2026-03-06 23:59\nextensions:\n  - {student: bob, days: 2, due: 2026-03-09 10:00}\n", ":4: extensions.0",
     "exactly one of due"),
    ("due: 2026-03-06 23:59\nsurprise: 1\n", ":3: surprise:", "Extra inputs are not permitted"),
    ("due: 0001-01-01 00:00+14:00\n", ":2: due:", "outside the years 1971-2199"),
]


@pytest.mark.parametrize(("extra", "where", "message"), BROKEN)
def test_mistakes_are_located(extra: str, where: str, message: str) -> None:
    text = "title: T\n" + extra + "problems: [{id: nnx-mlp, points: 5}]\n"
    path = Path("courses/cc/assignments/tt.yaml")
    with pytest.raises(CourseFileError) as err:
        parse_assignment(text, path, course_id="cc", zone=load_course(ROOT / "courses" / "example").zone,
                         problem_ids=PROBLEM_IDS)
    assert any(e.startswith(f"{path}{where}") and message in e for e in err.value.errors), err.value.errors


def test_a_problem_belongs_to_one_assignment_per_course(tmp_path: Path) -> None:
    one = "title: A\ndue: 2026-03-06 23:59\nproblems: [{id: nnx-mlp}]\n"
    write(tmp_path, {"cs101/course.yaml": "title: C\n", "cs101/assignments/hw-a.yaml": one,
                     "cs101/assignments/hw-b.yaml": one, "cs101/assignments/bad.yaml": "title: [\n"})
    bank = CourseBank(tmp_path, PROBLEM_IDS)
    course = bank.get("cs101")
    assert course is not None and set(course.assignments) == {"hw-a"}
    assert "is already in assignment 'hw-a'" in str(bank.errors[tmp_path / "cs101/assignments/hw-b.yaml"])
    assert "not valid YAML" in str(bank.errors[tmp_path / "cs101/assignments/bad.yaml"])


def test_gradax_check_validates_course_files(tmp_path: Path, gradax: Any) -> None:
    ok = gradax("check", "courses/example")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok     courses/example/assignments/hw1.yaml" in ok.stdout
    root = write(tmp_path, {"cs101/course.yaml": "title: C\ntimezone: Europe/Zurich\n",
                            "cs101/assignments/hw.yaml": "title: HW\ndue: 2026-03-06 23:59\n"
                                                     "problems:\n  - {id: no-such-problem, points: 3}\n"})
    bad = gradax("check", str(root))
    assert bad.returncode == 1
    assert f"{root}/cs101/assignments/hw.yaml:4: problems.0.id: there is no problem 'no-such-problem'" in bad.stdout


def test_per_test_points_weigh_the_score() -> None:
    text = (ROOT / "problems" / "nnx-module-basics.yaml").read_text()
    text = text.replace("      args: {seed: 0, x: [1.0, 2.0, 3.0], features: 4}",
                        "      args: {seed: 0, x: [1.0, 2.0, 3.0], features: 4}\n      points: 4")
    problem = parse_problem(text, Path("p.yaml"))
    cases = build_cases(problem)
    assert [c.points for c in cases] == [4.0] + [1.0] * (len(cases) - 1)
    # the public test (4 of 10 points) alone passed: 0.4, not 1/7
    assert points_score(cases, [True] + [False] * (len(cases) - 1)) == 0.4
    assert points_score(cases, [False] + [True] * (len(cases) - 1)) == 0.6
    default = build_cases(parse_problem((ROOT / "problems" / "nnx-module-basics.yaml").read_text(), Path("p.yaml")))
    assert points_score(default, [True, False, False, False, False, False, False]) == round(1 / 7, 4)
