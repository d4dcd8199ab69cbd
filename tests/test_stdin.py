"""A graded program's standard input is empty, and the channel the grader's tests arrive on is the grader's own.

The request (and, on a Submit, the hidden tests after the public ones are reported) comes on the child's stdin;
the harness moves it to a descriptor of its own before any program runs and leaves /dev/null in its place
(graders/child/harness.py `detach_stdin`). An `input()` or `breakpoint()` left in a submission then ends at once
with a clear error and advice, instead of waiting for the grader's channel until the wall-clock limit; a program
that finds and closes the channel ends its own run, and is told so, never as gradax's failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from warm_grading import grade_warm

from graders.executor import Executor
from graders.problem import ProblemBank
from graders.settings import GraderSettings

ROOT = Path(__file__).resolve().parent.parent
FILES = Path(__file__).resolve().parent / "attacks" / "stdin"
PID = "nnx-module-basics"

pytestmark = [pytest.mark.slow, pytest.mark.attack]
# Both paths (the `cold_or_warm` fixture's default) where the two set stdin up differently (a pipe bwrap passes on,
# the zygote's dup2): the empty stdin and the lost channel; the rest runs warm only (the same harness code, without a
# fresh Python importing jax).


def _grade(name: str, path: tuple[Executor, GraderSettings]) -> dict:  # type: ignore[type-arg]
    pool, settings = path
    report, _ = grade_warm(pool, ProblemBank(ROOT / "problems"), PID, (FILES / f"{name}.py").read_bytes(), settings)
    return report


@pytest.mark.parametrize(("name", "error", "cold_or_warm"), [
    ("input", "EOFError: EOF when reading a line", "cold"), ("input", "EOFError: EOF when reading a line", "warm"),
    ("breakpoint", "BdbQuit", "warm")], indirect=["cold_or_warm"])
def test_input_and_breakpoint_end_at_once_with_advice(name: str, error: str,
                                                      cold_or_warm: tuple[Executor, GraderSettings]) -> None:
    report = _grade(name, cold_or_warm)
    public = next(t for t in report["tests"] if t["public"])
    assert report["verdict"] == "runtime_error", report["message"]
    assert public["message"].startswith(error), public
    assert "reads standard input" in (report["diagnosis"] or ""), report["diagnosis"]
    # Not the wall-clock limit (60 s): the first test ended on its own, at once.
    assert report["usage"]["wall_s"] < report["limits"]["wall_s"] / 4, report["usage"]


@pytest.mark.parametrize("cold_or_warm", ["warm"], indirect=True)
def test_stdin_reads_empty_and_a_correct_answer_is_accepted(cold_or_warm: tuple[Executor, GraderSettings]) -> None:
    report = _grade("reads_empty_stdin", cold_or_warm)
    assert report["verdict"] == "accepted", report["message"]


def test_a_program_that_closes_the_grader_channel_ends_its_own_run(
        cold_or_warm: tuple[Executor, GraderSettings]) -> None:
    report = _grade("closes_the_channel", cold_or_warm)
    assert report["verdict"] == "runtime_error", report["message"]
    tests = report["tests"]
    assert tests[0]["public"] and tests[0]["status"] == "passed"
    assert all(t["status"] == "skipped" for t in tests[1:]), tests
    assert f"The run ended after test '{tests[0]['name']}', before test '{tests[1]['name']}' started" in (
        report["message"])
    assert "not your fault" not in report["message"]
