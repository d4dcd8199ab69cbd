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

from graders.executor import Executor, make_executor
from graders.problem import ProblemBank
from graders.settings import GraderSettings

ROOT = Path(__file__).resolve().parent.parent
FILES = Path(__file__).resolve().parent / "attacks" / "stdin"
PID = "nnx-module-basics"

pytestmark = [pytest.mark.slow, pytest.mark.attack]
# Both paths where the two set stdin up differently (a pipe bwrap passes on, the zygote's dup2): the empty stdin
# and the lost channel; the rest runs warm only (the same harness code, without a fresh Python importing jax).
BOTH = ["cold", "warm"]


@pytest.fixture
def executor(request: pytest.FixtureRequest, data_dir: Path) -> tuple[Executor, GraderSettings]:
    if request.param == "cold":
        settings = GraderSettings(data_dir=data_dir, sandbox="bwrap", pool="cold")
        return make_executor(settings, pool="cold"), settings
    pool = request.getfixturevalue("warm_pool")
    return pool, pool.settings


def _grade(name: str, executor: tuple[Executor, GraderSettings]) -> dict:  # type: ignore[type-arg]
    pool, settings = executor
    report, _ = grade_warm(pool, ProblemBank(ROOT / "problems"), PID, (FILES / f"{name}.py").read_bytes(), settings)
    return report


@pytest.mark.parametrize(("name", "error", "executor"), [
    ("input", "EOFError: EOF when reading a line", "cold"), ("input", "EOFError: EOF when reading a line", "warm"),
    ("breakpoint", "BdbQuit", "warm")], indirect=["executor"])
def test_input_and_breakpoint_end_at_once_with_advice(name: str, error: str,
                                                      executor: tuple[Executor, GraderSettings]) -> None:
    report = _grade(name, executor)
    public = next(t for t in report["tests"] if t["public"])
    assert report["verdict"] == "runtime_error", report["message"]
    assert public["message"].startswith(error), public
    assert "reads standard input" in (report["diagnosis"] or ""), report["diagnosis"]
    # Not the wall-clock limit (60 s): the first test ended on its own, at once.
    assert report["usage"]["wall_s"] < report["limits"]["wall_s"] / 4, report["usage"]


@pytest.mark.parametrize("executor", ["warm"], indirect=True)
def test_stdin_reads_empty_and_a_correct_answer_is_accepted(executor: tuple[Executor, GraderSettings]) -> None:
    report = _grade("reads_empty_stdin", executor)
    assert report["verdict"] == "accepted", report["message"]


@pytest.mark.parametrize("executor", BOTH, indirect=True)
def test_a_program_that_closes_the_grader_channel_ends_its_own_run(executor: tuple[Executor, GraderSettings]) -> None:
    report = _grade("closes_the_channel", executor)
    assert report["verdict"] == "runtime_error", report["message"]
    tests = report["tests"]
    assert tests[0]["public"] and tests[0]["status"] == "passed"
    assert all(t["status"] == "skipped" for t in tests[1:]), tests
    assert f"The run ended after test '{tests[0]['name']}', before test '{tests[1]['name']}' started" in (
        report["message"])
    assert "not your fault" not in report["message"]
