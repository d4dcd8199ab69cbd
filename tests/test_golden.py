"""Golden grading cases: each folder under tests/golden is graded through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*") if p.is_dir())


def _submission(case: Path) -> Path:
    for name in ("submission.py", "submission.bin"):
        if (case / name).exists():
            return case / name
    raise AssertionError(f"{case} has no submission file")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_golden(case: Path, gradax: Any) -> None:
    expected = json.loads((case / "expected.json").read_text())
    problem_id = case.parent.name
    result = gradax("grade", problem_id, str(_submission(case)), "--json")
    assert result.stdout, result.stderr
    report = result.json()
    assert report["version"] == 1
    assert report["problem"] == problem_id
    assert report["verdict"] == expected["verdict"], json.dumps(report, indent=1)[:3000]
    default_exit = 0 if expected["verdict"] == "accepted" else (2 if expected["verdict"] == "internal_error" else 1)
    assert result.returncode == expected.get("exit_code", default_exit)
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
    if "public_test_message_contains" in expected:
        public = next(t for t in report["tests"] if t["public"])
        assert expected["public_test_message_contains"] in public["message"], public["message"]
    # Hidden tests never carry expected values or error sizes.
    for test in report["tests"]:
        if not test["public"]:
            assert test["expected"] is None and test["got"] is None and test["max_abs_error"] is None
    if report["verdict"] != "accepted":
        assert report["score"] < 1.0
