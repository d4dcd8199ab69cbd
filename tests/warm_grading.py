"""Grade in this test process through a warm pool (tests/conftest.py `warm_pool`), with what `gradax grade --json`
would print and return: for tests that grade many submissions (a `gradax grade` pays a jax import for each)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graders.cli import EXIT_ACCEPTED, EXIT_REJECTED, EXIT_UNGRADABLE
from graders.engine import Grader

if TYPE_CHECKING:
    from graders.pool import WarmPool
    from graders.problem import ProblemBank


@dataclass
class GradeResult:
    """What `gradax grade --json` would have returned (exit code), printed (the report) and logged."""

    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class _LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def grade_warm(pool: WarmPool, bank: ProblemBank, problem_id: str, code: bytes) -> tuple[dict[str, Any], GradeResult]:
    """Grade `code` in a warm child; fails the test if the pool fell back to a cold start meanwhile."""
    loaded = bank.get(problem_id)
    assert loaded is not None, (problem_id, bank.errors)
    cold_before = pool.stats["cold"]
    logs = _LogLines()
    logging.getLogger().addHandler(logs)
    try:
        report = Grader(bank, pool.settings, executor=pool).grade_loaded(loaded, code, mode="submit")
    finally:
        logging.getLogger().removeHandler(logs)
    assert pool.stats["cold"] == cold_before, f"graded with a cold start: {pool.failure}"
    # As graders/cli.py cmd_grade answers.
    returncode = (EXIT_UNGRADABLE if report.verdict == "internal_error"
                  else EXIT_ACCEPTED if report.accepted else EXIT_REJECTED)
    result = GradeResult(returncode, json.dumps(report.to_json_dict(), indent=2), "\n".join(logs.lines))
    return result.json(), result
