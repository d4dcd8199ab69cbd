"""A bank of tiny problems for server tests that measure scheduling (fair share, retries, hand-offs), not grading.

Each problem is `gradax new`'s scaffold (double an array: `jnp.asarray(x) * 2`) with tiny limits. Their
reference outputs and compile profiles are prepared up front, once per data dir and content (the caches are
keyed by the files' hash; one test process prepares, the others wait and read), two at a time, so a test's
first submission to each problem costs a warm grading and not a trusted reference run in the middle of what
the test measures.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

from graders.prepare import prepare
from graders.problem import ProblemBank
from graders.scaffold import scaffold
from graders.settings import GraderSettings

IDS = tuple(f"tiny-{i}" for i in range(6))
# CPU seconds and memory far under the real problems' (20 s, 2048 MiB), far over what doubling an array needs.
LIMITS = "limits: {time_s: 5, memory_mb: 1024}\n"


@dataclass(frozen=True)
class SmallBank:
    problems_dir: Path
    courses_dir: Path  # empty: the real courses name problems this bank does not have

    @property
    def ids(self) -> tuple[str, ...]:
        return IDS

    def env(self) -> dict[str, str]:
        """GRADAX_* variables for a `gradax serve` or `gradax worker` grading this bank."""
        return {"GRADAX_PROBLEMS_DIR": str(self.problems_dir), "GRADAX_COURSES_DIR": str(self.courses_dir)}


def function_of(problem_id: str) -> str:
    return problem_id.replace("-", "_")


def correct_answer(problem_id: str) -> str:
    return f"import jax.numpy as jnp\n\n\ndef {function_of(problem_id)}(seed, x):\n    return jnp.asarray(x) * 2\n"


def make_small_bank(root: Path, data_dir: Path) -> SmallBank:
    """Write the bank under `root` and prepare it in `data_dir` (reference outputs and compile profiles)."""
    problems = root / "problems"
    for problem_id in IDS:
        scaffold(problem_id, problems)
        path = problems / f"{problem_id}.yaml"
        path.write_text(path.read_text() + LIMITS)
    courses = root / "courses"
    courses.mkdir()
    bank = ProblemBank(problems)
    assert not bank.errors, bank.errors
    settings = GraderSettings(data_dir=data_dir, problems_dir=problems, courses_dir=courses)
    # One test process prepares at a time (xdist workers share the data dir); the next one finds it all on disk.
    # As `gradax prepare` does: one trusted run per problem computes its outputs and records its profile.
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "small-bank.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = prepare(bank, list(IDS), settings, workers=2)  # each is a trusted process of its own: one per core
    assert result.ok, [(p.id, p.error) for p in result.problems if p.status == "failed"]
    return SmallBank(problems, courses)
