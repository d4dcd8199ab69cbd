"""The harness request: everything that crosses into a grading child, built by the trusted parent.

One message on the child's stdin (graders/wire.py; two when hidden tests are held back, see `build_request`):
the function's name, the programs' code, the test inputs
(scalars inline, arrays as raw `.npy`), the output budget and the probes the problem asks for. Never
expected values, the reference solution or anything else of the problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graders import wire
from graders.cases import CaseInput
from graders.problem import LoadedProblem


def encode_cases(cases: list[CaseInput], arg_dtypes: list[str]) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """Tests as request JSON plus arrays: scalars inline as floats, arrays by index."""
    arrays: list[np.ndarray] = []
    tests = []
    for case in cases:
        args: list[dict[str, Any]] = []
        for value, dtype in zip(case.args, arg_dtypes, strict=True):
            if isinstance(value, np.ndarray):
                args.append({"a": len(arrays), "dtype": dtype})
                arrays.append(value)
            else:
                args.append({"s": float(value)})
        tests.append({"name": case.name, "args": args})
    return tests, arrays


def build_request(loaded: LoadedProblem, cases: list[CaseInput], programs: list[str],
                  output_budget: int, probes: dict[str, Any] | None = None, *,
                  hold_back_from: int | None = None) -> bytes:
    """A harness request; `probes` (graders/model_checks.probe_request) asks for the model and checks.

    `hold_back_from` (a submission's request: the index of its first hidden test, at least 1) makes it two messages
    when tests follow that index: the first carries the tests before it and `"sealed"`, the number held back; the
    second carries those tests' inputs, and the parent sends it only once the child has reported the first ones
    (graders/supervision.py ChildPipes). So nothing the submission printed, raised or returned before then can hold a
    hidden input, and what it does after is not shown (graders/engine.py).
    """
    problem = loaded.problem
    dtypes: list[str] = [a.dtype for a in problem.args]
    if hold_back_from is not None and hold_back_from < 1:
        # The cut before the hidden tests is the report of the test before them (every problem has a public one).
        raise ValueError("a request holds tests back only after at least one test")
    split = len(cases) if hold_back_from is None else min(hold_back_from, len(cases))
    if split < len(cases) and len(programs) != 1:
        raise ValueError("only a request of one program holds tests back")
    tests, arrays = encode_cases(cases[:split], dtypes)
    header: dict[str, Any] = {
        "function": problem.function,
        "programs": [{"code": code} for code in programs],
        "tests": tests,
        "output_budget": output_budget,
    }
    if probes:
        header["probes"] = probes
    if split == len(cases):
        return wire.encode(header, arrays)
    header["sealed"] = len(cases) - split
    held_tests, held_arrays = encode_cases(cases[split:], dtypes)
    return wire.encode(header, arrays) + wire.encode({"tests": held_tests}, held_arrays)
