"""Golden grading cases: each folder under tests/golden is graded by the real engine, sandbox and warm pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graders.engine import Grader
from graders.executor import ColdExecutor, Executor
from graders.problem import ProblemBank
from graders.settings import GraderSettings

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*") if p.is_dir())


def _submission(case: Path) -> Path:
    for name in ("submission.py", "submission.bin"):
        if (case / name).exists():
            return case / name
    raise AssertionError(f"{case} has no submission file")


# Problems whose cases are graded cold instead of warm (empty: the warm pool grades every problem as cold does;
# nnx-conv-lenet, nnx-residual-block and nnx-vit-patch-embed were here until the compile-profile fixes of 2026-12-01).
COLD_ONLY: set[str] = set()


def _param(case: Path) -> Any:
    # One problem's cases on one test worker: its reference is prepared once, its warm children serve them all.
    return pytest.param(case, id=f"{case.parent.name}/{case.name}",
                        marks=pytest.mark.xdist_group(f"golden-{case.parent.name}"))


@pytest.fixture(scope="module")
def grader(data_dir: Path, warm_pool: Executor) -> Grader:
    settings = GraderSettings(data_dir=data_dir)
    return Grader(ProblemBank(settings.problems_dir), settings, executor=warm_pool)


@pytest.fixture(scope="module")
def cold_grader(data_dir: Path) -> Grader:
    settings = GraderSettings(data_dir=data_dir)
    return Grader(ProblemBank(settings.problems_dir), settings, executor=ColdExecutor())


@pytest.mark.slow
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_golden(case: Path, grader: Grader, cold_grader: Grader) -> None:
    """Graded in-process through the warm pool the test process shares (`gradax grade` is the same `Grader`;
    tests/test_cli.py covers the command itself)."""
    expected = json.loads((case / "expected.json").read_text())
    problem_id = case.parent.name
    graded = (cold_grader if problem_id in COLD_ONLY else grader).grade(problem_id, _submission(case).read_bytes())
    report = graded.to_json_dict()
    assert report["version"] == 1
    assert report["problem"] == problem_id
    assert report["verdict"] == expected["verdict"], json.dumps(report, indent=1)[:3000]
    exit_code = 0 if graded.accepted else (2 if graded.verdict == "internal_error" else 1)  # as `gradax grade`
    default_exit = 0 if expected["verdict"] == "accepted" else (2 if expected["verdict"] == "internal_error" else 1)
    assert exit_code == expected.get("exit_code", default_exit)
    for key in ("passed", "total"):
        if key in expected:
            assert report[key] == expected[key], key
    if "diagnosis_contains" in expected:
        if expected["diagnosis_contains"] is None:
            assert report["diagnosis"] is None
        else:
            assert report["diagnosis"] and expected["diagnosis_contains"] in report["diagnosis"], report["diagnosis"]
    if "message_contains" in expected:
        assert expected["message_contains"] in report["message"], report["message"]
    by_name = {t["name"]: t for t in report["tests"]}
    for name, status in expected.get("statuses", {}).items():
        assert by_name[name]["status"] == status, by_name[name]
    for name, stage in expected.get("stages", {}).items():
        assert by_name[name]["stage"] == stage, by_name[name]
    if "stdout_contains" in expected:
        assert expected["stdout_contains"] in report["stdout"], report["stdout"]
    if "public_test_message_contains" in expected:
        public = next(t for t in report["tests"] if t["public"])
        assert expected["public_test_message_contains"] in public["message"], public["message"]
    # Hidden tests never carry expected values or error sizes.
    for test in report["tests"]:
        if not test["public"]:
            assert test["expected"] is None and test["got"] is None and test["max_abs_error"] is None
    if report["verdict"] != "accepted":
        assert report["score"] < 1.0

