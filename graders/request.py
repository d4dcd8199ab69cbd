"""The harness request: everything that crosses into a grading child, built by the trusted parent.

One message on the child's stdin (graders/wire.py): the function's name, the programs' code, the test inputs
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
                  output_budget: int, probes: dict[str, Any] | None = None) -> bytes:
    """A harness request; `probes` (graders/model_checks.probe_request) asks for the model and checks."""
    problem = loaded.problem
    tests, arrays = encode_cases(cases, [a.dtype for a in problem.args])
    header: dict[str, Any] = {
        "function": problem.function,
        "programs": [{"code": code} for code in programs],
        "tests": tests,
        "output_budget": output_budget,
    }
    if probes:
        header["probes"] = probes
    return wire.encode(header, arrays)
