"""Turn a problem's tests into concrete inputs, following the harness convention.

Scalars become Python floats (seed 0 arrives as 0.0); arrays become numpy arrays of the declared
dtype, converted to `jax.Array` only inside the process that calls the function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graders.problem import (
    ArgSpec,
    Choice,
    Generated,
    GeneratedArray,
    IntRange,
    Problem,
    RandomArray,
    TestCase,
)

ArgInput = float | np.ndarray


@dataclass(frozen=True)
class CaseInput:
    name: str
    public: bool
    args: tuple[ArgInput, ...]
    points: float = 1.0  # the test's weight in the score


def points_score(cases: list[CaseInput], passed: list[bool]) -> float:
    """The fraction of test points passed (0..1): equal weights unless the problem gives tests `points`."""
    total = sum(c.points for c in cases)
    return round(sum(c.points for c, ok in zip(cases, passed, strict=True) if ok) / total, 4) if total else 0.0


def _numpy_dtype(spec: ArgSpec) -> np.dtype:
    if spec.dtype == "bfloat16":
        # numpy has no bfloat16; ship float32 and let the harness cast.
        return np.dtype(np.float32)
    return np.dtype(spec.dtype)


def _random_array(rng: np.random.Generator, kind: str, shape: list[int], low: float, high: float,
                  scale: float) -> np.ndarray:
    if kind == "normal":
        return rng.standard_normal(shape) * scale
    if kind == "uniform":
        return rng.uniform(low, high, size=shape)
    return rng.integers(int(low), int(high), size=shape, endpoint=False)


def array_value(spec: ArgSpec, value: object) -> np.ndarray:
    if isinstance(value, RandomArray):
        rng = np.random.default_rng(value.seed)
        arr = _random_array(rng, value.random, value.shape, value.low, value.high, value.scale)
    else:
        arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"argument {spec.name!r}: not a numeric array")
    return np.ascontiguousarray(arr.astype(_numpy_dtype(spec)))


def arg_value(spec: ArgSpec, value: object) -> ArgInput:
    if spec.kind == "scalar":
        if isinstance(value, list | RandomArray):
            raise ValueError(f"argument {spec.name!r} is a scalar but the test gives an array")
        return float(value)  # type: ignore[arg-type]
    return array_value(spec, value)


def explicit_case(problem: Problem, case: TestCase, public: bool) -> CaseInput:
    args = tuple(arg_value(spec, case.args[spec.name]) for spec in problem.args)
    return CaseInput(case.name, public, args, case.points)


def generated_cases(problem: Problem, gen: Generated) -> list[CaseInput]:
    rng = np.random.default_rng(gen.seed)
    cases = []
    for i in range(gen.count):
        dims = {name: int(rng.integers(lo, hi, endpoint=True)) for name, (lo, hi) in sorted(gen.dims.items())}
        args: list[ArgInput] = []
        for spec in problem.args:
            rule = gen.args[spec.name]
            if isinstance(rule, IntRange):
                lo, hi = rule.int_range
                args.append(float(rng.integers(lo, hi, endpoint=True)))
            elif isinstance(rule, Choice):
                args.append(float(rule.choice[int(rng.integers(0, len(rule.choice)))]))
            else:
                assert isinstance(rule, GeneratedArray)
                shape = []
                for d in rule.shape:
                    if isinstance(d, str):
                        shape.append(dims[d])
                    elif isinstance(d, list):
                        shape.append(int(rng.integers(d[0], d[1], endpoint=True)))
                    else:
                        shape.append(d)
                arr = _random_array(rng, rule.random, shape, rule.low, rule.high, rule.scale)
                args.append(np.ascontiguousarray(arr.astype(_numpy_dtype(spec))))
        cases.append(CaseInput(f"{gen.name}-{i + 1}", False, tuple(args), gen.points))
    return cases


def build_cases(problem: Problem, *, public_only: bool = False) -> list[CaseInput]:
    """Public tests first, then hidden, then generated: the order reports list them in."""
    cases = [explicit_case(problem, c, True) for c in problem.tests.public]
    if public_only:
        return cases
    cases += [explicit_case(problem, c, False) for c in problem.tests.hidden]
    for gen in problem.tests.generated:
        cases += generated_cases(problem, gen)
    return cases
