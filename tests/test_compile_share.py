"""A submission that jits its own function pays its compilation: the report says how much of its time that was."""

from __future__ import annotations

import pytest
from small_bank import SmallBank, correct_answer, function_of

from graders.engine import Grader
from graders.executor import ColdExecutor
from graders.problem import ProblemBank
from graders.settings import GraderSettings

pytestmark = [pytest.mark.slow]

PROBLEM = "tiny-2"
# A correct answer whose jitted body is long enough to take a visible time to trace and compile.
JITTED = f'''
import jax
import jax.numpy as jnp


@jax.jit
def _double(x):
    y = jnp.asarray(x)
    for i in range(200):
        y = y + jnp.sin(y) * 0.0 + 0.0 * i
    return y * 2


def {function_of(PROBLEM)}(seed, x):
    return _double(x)
'''

# The same work in a `lax.scan` applied eagerly, as `nnx.scan` does in nnx-scan-layers: jax compiles the scan, body
# and all, as a program named "scan", not after any function the submission defines.
SCANNED = f'''
import jax
import jax.numpy as jnp


def {function_of(PROBLEM)}(seed, x):
    def step(carry, _):
        y = carry
        for i in range(200):
            y = y + jnp.sin(y) * 0.0 + 0.0 * i
        return y, None

    doubled, _ = jax.lax.scan(step, jnp.asarray(x), None, length=1)
    return doubled * 2
'''


@pytest.mark.parametrize("code", [JITTED, SCANNED], ids=["jit", "eager-scan"])
def test_the_report_names_the_submissions_own_compile_time(code: str, small_bank: SmallBank, data_dir) -> None:  # type: ignore[no-untyped-def]
    settings = GraderSettings(data_dir=data_dir, problems_dir=small_bank.problems_dir,
                              courses_dir=small_bank.courses_dir)
    grader = Grader(ProblemBank(small_bank.problems_dir), settings, executor=ColdExecutor(sandboxed=True))
    jitted = grader.grade(PROBLEM, code)
    assert jitted.verdict == "accepted", jitted.message
    timings = jitted.timings
    assert 0 < timings["compile_ms"] <= timings["tests_ms"], timings
    assert jitted.timing is not None and jitted.timing.startswith("compile "), jitted.timing
    assert f"of your {timings['tests_ms'] / 1000:.1f} s" in jitted.timing
    plain = grader.grade(PROBLEM, correct_answer(PROBLEM))  # eager library calls: no share worth naming
    assert plain.verdict == "accepted" and plain.timing is None, (plain.timing, plain.timings)
    assert "timing" in jitted.to_json_dict() and plain.to_json_dict()["timing"] is None
