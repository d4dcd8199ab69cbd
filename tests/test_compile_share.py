"""A submission that jits its own function pays its compilation: the report says how much of its time that was."""

from __future__ import annotations

import pytest
from small_bank import SmallBank, correct_answer, function_of

from graders.engine import Grader
from graders.executor import ColdExecutor, make_executor
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


# A new jitted closure in every call, as a submission that jits inside the function under test has (it is called
# once per test): the same program every time, so after the first the process finds what it compiled itself
# (graders/child/profile_replay.py `OwnPrograms`) instead of compiling it again; the read-only replay cache never holds
# it. Three closures in one call, as what the hidden tests print is not shown.
HIT = "/jax/compilation_cache/cache_hits"
RECOMPILED = f'''
import jax
import jax.numpy as jnp

_events = []
jax.monitoring.register_event_listener(lambda name, **kwargs: _events.append(name))
_probe = jnp.ones((5,), jnp.float32)


def {function_of(PROBLEM)}(seed, x):
    found = []
    for _ in range(3):
        before = _events.count("{HIT}")
        jax.jit(lambda v: jnp.tanh(v) * 2.0 + 1.0)(_probe).block_until_ready()
        found.append(_events.count("{HIT}") - before)
    print("found", found)
    return jnp.asarray(x) * 2
'''


@pytest.mark.parametrize("pool", ["warm", "cold"])
def test_a_program_compiled_again_in_the_same_grading_is_found_not_compiled(pool: str, small_bank: SmallBank,
                                                                            data_dir, request) -> None:  # type: ignore[no-untyped-def]
    settings = GraderSettings(data_dir=data_dir, problems_dir=small_bank.problems_dir,
                              courses_dir=small_bank.courses_dir)
    # Cold as a server grades cold: a fresh sandboxed Python reading the replay cache.
    executor = request.getfixturevalue("warm_pool") if pool == "warm" else make_executor(settings, pool="cold")
    report = Grader(ProblemBank(small_bank.problems_dir), settings, executor=executor).grade(PROBLEM, RECOMPILED)
    assert report.verdict == "accepted", report.message
    assert "found [0, 1, 1]" in report.stdout.splitlines(), report.stdout  # compiled once, then found twice
