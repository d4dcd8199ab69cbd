"""Grade a student's own code on their own machine against the public tests: `gradax test`.

The same harness code loads the file and converts what the function returns, and the same `judge` compares and
words the report, so a message offline reads exactly as it does after Run. Differences, by design: the code
runs in this process, with no sandbox and no limits (it is the student's own code on the student's machine),
and there are no hidden tests and no known-mistake diagnoses (their code stays on the server).
"""

from __future__ import annotations

import io
import os
import time
from typing import Any

import numpy as np

from graders import wire
from graders.cases import build_cases
from graders.child import harness
from graders.child_events import ResultChannel
from graders.compare import Output
from graders.engine import judge
from graders.problem import LoadedProblem, Problem
from graders.reference import ProgramOutputs, ReferenceOutputs
from graders.report import Report
from graders.request import build_request
from graders.supervision import ChildOutcome

OUTPUT_BUDGET = 256 * 1024 * 1024


def output_from_json(expected: dict[str, Any]) -> Output:
    """An expected output as the API sends it ({tree, leaves: [{dtype, shape, values}]})."""
    leaves = tuple(np.asarray(leaf["values"], dtype=leaf["dtype"]).reshape(leaf["shape"])
                   for leaf in expected["leaves"])
    return Output(expected["tree"], leaves)


def public_problem(data: dict[str, Any]) -> Problem:
    """The problem as far as its public tests go (what `gradax pull` saved)."""
    return Problem.model_validate(data)


def grade_public(problem: Problem, expected: list[Output], code: str) -> Report:
    """Run `code` on the problem's public tests in this process and judge it like Run does."""
    loaded = LoadedProblem(problem, path=None, reference_path=None, source=b"", reference_source=b"")  # type: ignore[arg-type]
    cases = build_cases(problem, public_only=True)
    request = wire.decode_all(build_request(loaded, cases, [code], output_budget=OUTPUT_BUDGET))[0]
    out = io.BytesIO()
    wire.write_message(out, {"event": "ready", "pid": os.getpid()})
    start = time.monotonic()
    harness.serve(request, out)
    run_ms = (time.monotonic() - start) * 1000
    # The same validation as a sandboxed run's (the events `judge` reads are the checked ones).
    channel = ResultChannel(programs=1, tests=len(cases), budget=OUTPUT_BUDGET + (1 << 20))
    outcome = ChildOutcome(messages=channel.feed(out.getvalue()), exit_code=0, run_ms=run_ms, sandboxed=False)
    reference = ReferenceOutputs(key="public", reference=ProgramOutputs(outputs=dict(enumerate(expected))),
                                 mistakes={})
    report = judge(loaded, cases, reference, outcome, "run")
    report.duration_ms = round(run_ms, 1)
    return report
