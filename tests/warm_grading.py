"""Grade in this test process, with what `gradax grade --json` would print and return: for tests that grade many
submissions (each `gradax grade` first imports the engine, ~1 CPU-s, and a cold one a jax import in its child).
Through the warm pool (tests/conftest.py `warm_pool`) or a cold executor (a fresh sandboxed Python each)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graders.cli import EXIT_ACCEPTED, EXIT_REJECTED, EXIT_UNGRADABLE
from graders.engine import Grader
from graders.pool import WarmPool

if TYPE_CHECKING:
    from graders.executor import Executor
    from graders.problem import ProblemBank
    from graders.settings import GraderSettings


@dataclass
class CliResult:
    """What a `gradax` command returned (exit code), printed and logged; for `grade_warm`, what `gradax grade
    --json` would have (the report on stdout)."""

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


def grade_warm(pool: Executor, bank: ProblemBank, problem_id: str, code: bytes,
               settings: GraderSettings | None = None) -> tuple[dict[str, Any], CliResult]:
    """Grade `code` with `pool` (and `settings`, else the warm pool's own); a warm pool must grade it in a warm
    child (a cold fallback fails the test)."""
    loaded = bank.get(problem_id)
    assert loaded is not None, (problem_id, bank.errors)
    cold_before = pool.stats["cold"] if isinstance(pool, WarmPool) else 0
    logs = _LogLines()
    logging.getLogger().addHandler(logs)
    try:
        if settings is None:
            assert isinstance(pool, WarmPool), "settings are needed for this executor"
            settings = pool.settings
        report = Grader(bank, settings, executor=pool).grade_loaded(loaded, code, mode="submit")
    finally:
        logging.getLogger().removeHandler(logs)
    if isinstance(pool, WarmPool):
        assert pool.stats["cold"] == cold_before, f"graded with a cold start: {pool.failure}"
    # As graders/cli.py cmd_grade answers.
    returncode = (EXIT_UNGRADABLE if report.verdict == "internal_error"
                  else EXIT_ACCEPTED if report.accepted else EXIT_REJECTED)
    result = CliResult(returncode, json.dumps(report.to_json_dict(), indent=2), "\n".join(logs.lines))
    return result.json(), result
