"""The grading report (JSON version 1) and its JUnit rendering.

Field names are a fixed contract (docs/report.md): extend, never rename.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from xml.etree import ElementTree as ET

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from graders.shown_text import shown

REPORT_VERSION = 1
LOG_LIMIT = 8 * 1024


def _shown(value: Any) -> Any:
    return shown(value) if isinstance(value, str) else value


# Every string of a report, as it is built or assigned: much of it is what the submission wrote (messages,
# tracebacks, stdout, its class names), and a report goes to terminals, JUnit XML, PostgreSQL and browsers.
Shown = Annotated[str, BeforeValidator(_shown)]


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    RUNTIME_ERROR = "runtime_error"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    SYNTAX_ERROR = "syntax_error"
    INVALID_SUBMISSION = "invalid_submission"
    INTERNAL_ERROR = "internal_error"


class TestStatus(StrEnum):
    __test__ = False  # a report's test status, not a pytest test class
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"


class TestReport(BaseModel):
    __test__ = False  # a report's test, not a pytest test class
    model_config = ConfigDict(validate_assignment=True)

    name: Shown
    public: bool
    status: TestStatus
    message: Shown = ""
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    duration_ms: float | None = None
    # Extensions, filled for public tests only: what a student needs to see the difference.
    stage: Shown | None = None
    expected: Shown | None = None
    got: Shown | None = None
    mismatched: int | None = None
    elements: int | None = None
    worst_index: list[int] | None = None
    traceback: Shown | None = None
    line: int | None = None
    # The verdict this test alone gives when it did not pass; the report's verdict is the first one.
    verdict: Verdict | None = None
    points: float | None = None  # the test's weight in `score` (problem YAML `points`, default 1)


class RunLimits(BaseModel):
    """The limits a run was judged against (extension; present when a submission ran)."""

    cpu_s: float  # CPU time of every thread and process of the run, after start-up: the time limit
    wall_s: float  # wall-clock backstop for runs that sleep or wait (time spent waiting for a CPU excluded)
    wall_cap_s: float  # the longest any run may take, however busy the machine
    memory_mb: int
    output_kb: int  # size of the returned values
    log_kb: int  # stdout and stderr kept in the report (each)


class RunUsage(BaseModel):
    """What the run used, as measured from outside (extension; present when a submission ran)."""

    cpu_s: float | None = None
    wall_s: float | None = None
    cpu_wait_s: float | None = None  # only measured when the wall-clock backstop was reached
    memory_peak_mb: float | None = None
    result_bytes: int = 0
    stdout_bytes: int = 0
    stderr_bytes: int = 0


class Report(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    version: int = REPORT_VERSION
    problem: Shown
    verdict: Verdict
    score: float = 0.0
    passed: int = 0
    total: int = 0
    duration_ms: float = 0.0
    tests: list[TestReport] = Field(default_factory=list)
    diagnosis: Shown | None = None
    stdout: Shown = ""
    # Extensions
    mode: Shown = "submit"
    message: Shown = ""
    line: int | None = None
    stderr: Shown = ""
    hints: list[Shown] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    limits: RunLimits | None = None
    usage: RunUsage | None = None
    # Where the submission's own compilation was a large part of its time: "compile 0.6 s of your 0.7 s" ...
    timing: Shown | None = None

    @property
    def accepted(self) -> bool:
        return self.verdict == Verdict.ACCEPTED

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def internal_error(problem: str, mode: str, message: str) -> Report:
    """The report of a grading that failed through gradax's own fault, never the student's (the engine, the
    claim protocol and the graders of the server and the workers all report such failures with this)."""
    return Report(problem=problem, verdict=Verdict.INTERNAL_ERROR, mode=mode, message=message)


def starved_of_cpu(report: Report) -> bool:
    """The engine's report of a run the machine starved of CPU time (engine.judge, `SandboxLimits.starved`): an
    internal_error with a measured wait for a CPU. The wait is measured only when the wall-clock backstop stopped
    the run, and every other run stopped there is judged (time or memory limit), so no other report has both."""
    usage = report.usage
    return (report.verdict == Verdict.INTERNAL_ERROR and usage is not None and usage.cpu_wait_s is not None
            and usage.cpu_wait_s > 0)


def clip_log(data: bytes, total: int, limit: int = LOG_LIMIT) -> str:
    text = data[:limit].decode("utf-8", errors="replace")
    if total > limit:
        text += f"\n... [output truncated: {total} bytes in all, first {limit} shown]"
    return text


def to_junit(report: Report) -> str:
    """One <testsuite> per report, one <testcase> per test, as CI systems expect."""
    failures = sum(t.status == TestStatus.FAILED for t in report.tests)
    errors = sum(t.status in (TestStatus.ERROR, TestStatus.TIMEOUT) for t in report.tests)
    skipped = sum(t.status == TestStatus.SKIPPED for t in report.tests)
    suite = ET.Element(
        "testsuite",
        name=report.problem,
        tests=str(len(report.tests) or 1),
        failures=str(failures),
        errors=str(errors + (0 if report.tests else int(not report.accepted))),
        skipped=str(skipped),
        time=f"{report.duration_ms / 1000:.3f}",
    )
    ET.SubElement(suite, "properties").extend(
        [ET.Element("property", name="verdict", value=report.verdict.value)]
    )
    if not report.tests:
        case = ET.SubElement(suite, "testcase", classname=report.problem, name="load")
        if not report.accepted:
            ET.SubElement(case, "error", type=report.verdict.value, message=report.message).text = report.message
    for test in report.tests:
        case = ET.SubElement(
            suite, "testcase", classname=report.problem, name=test.name,
            time=f"{(test.duration_ms or 0) / 1000:.3f}",
        )
        if test.status == TestStatus.FAILED:
            ET.SubElement(case, "failure", message=test.message, type="wrong_answer").text = test.message
        elif test.status in (TestStatus.ERROR, TestStatus.TIMEOUT):
            ET.SubElement(case, "error", message=test.message, type=test.status.value).text = (
                test.traceback or test.message
            )
        elif test.status == TestStatus.SKIPPED:
            ET.SubElement(case, "skipped", message=test.message)
    if report.stdout:
        ET.SubElement(suite, "system-out").text = report.stdout
    if report.diagnosis:
        ET.SubElement(suite, "system-err").text = f"diagnosis: {report.diagnosis}"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
