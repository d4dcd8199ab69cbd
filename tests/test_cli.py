"""`gradax grade`: exit codes, JSON-only stdout, JUnit output, and input that cannot be graded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "reference_solutions" / "nnx_module_basics.py"
WRONG = ROOT / "tests" / "golden" / "nnx-module-basics" / "wrong-no-scaling" / "submission.py"


def test_unknown_problem_exits_2(gradax: Any, tmp_path: Path) -> None:
    result = gradax("grade", "no-such-problem", str(REFERENCE), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "unknown problem 'no-such-problem'" in result.stderr


def test_unreadable_file_exits_2(gradax: Any, tmp_path: Path) -> None:
    result = gradax("grade", "nnx-module-basics", str(tmp_path / "missing.py"), "--json")
    assert result.returncode == 2
    assert "cannot read" in result.stderr


@pytest.mark.slow
def test_accepted_json_and_junit(gradax: Any, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = gradax("grade", "nnx-module-basics", str(REFERENCE), "--json", "--junit", str(junit))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds the report and nothing else
    assert set(report) >= {"version", "problem", "verdict", "score", "passed", "total", "duration_ms", "tests",
                           "diagnosis", "stdout"}
    assert report["verdict"] == "accepted" and report["score"] == 1.0 and report["passed"] == report["total"]
    assert report["tests"][0] | {"name": "example", "public": True, "status": "passed"} == report["tests"][0]
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert len(suite.findall("testcase")) == report["total"]


@pytest.mark.slow
def test_wrong_answer_exits_1_with_junit_failures(gradax: Any, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    result = gradax("grade", "nnx-module-basics", str(WRONG), "--junit", str(junit))
    assert result.returncode == 1
    assert "wrong_answer" in result.stdout and "Diagnosis:" in result.stdout
    suite = ET.parse(junit).getroot()
    failures = suite.findall("testcase/failure")
    assert int(suite.get("failures", "0")) == len(failures) > 0


@pytest.mark.slow
def test_public_only_runs_public_tests(gradax: Any) -> None:
    result = gradax("grade", "nnx-module-basics", str(REFERENCE), "--json", "--public-only")
    report = json.loads(result.stdout)
    assert report["mode"] == "run" and report["total"] == 1 and report["tests"][0]["public"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"   \n\n", "the file is empty"),
        (b"def module_basics_forward(seed, x, features):\n    return '\xff'\n", "not UTF-8"),
        (b"#" * (64 * 1024 + 1), "the limit is 65536 bytes"),
    ],
    ids=["empty", "blank", "not-utf8", "too-large"],
)
def test_invalid_files_are_rejected_before_running(gradax: Any, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "submission.py"
    path.write_bytes(content)
    result = gradax("grade", "nnx-module-basics", str(path), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "invalid_submission"
    assert message in report["message"]
    assert report["tests"] == [] and report["score"] == 0.0
