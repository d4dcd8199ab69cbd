"""Engine settings, read from environment variables prefixed `GRADAX_`.

The root of gradax's one settings tree: the web app's `Settings` (app/core/config.py) extends this class
with what only the server needs, so a variable has one field, one type and one default wherever it is read.
Every documented `GRADAX_*` variable is a field of the tree (tests/unit/test_settings.py checks both ways).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POOLS = ("warm", "cold")


class GraderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADAX_", extra="ignore")

    data_dir: Path = Path(".gradax")
    problems_dir: Path = PROJECT_ROOT / "problems"
    # Course and assignment files (<course>/course.yaml, <course>/assignments/<id>.yaml; docs/courses.md),
    # checked by `gradax check` beside the problems; courses created in the browser are written here too.
    courses_dir: Path = PROJECT_ROOT / "courses"
    # "bwrap" is the only mode for untrusted code; "none" is for trusted local use and warns loudly.
    sandbox: Literal["bwrap", "none"] = "bwrap"
    # Upper bounds that no problem file can exceed (clients never choose limits at all).
    max_time_s: float = 30.0
    max_memory_mb: int = 4096
    max_output_kb: int = 65536
    max_code_bytes: int = 64 * 1024
    # Time allowed for the child to import jax/flax/optax before it counts as a grader failure.
    startup_timeout_s: float = 60.0
    # A cgroup (a path in the hierarchy, as in /proc/self/cgroup) under which cgroup v2 runs get their groups;
    # empty: `<own cgroup>/gradax` (graders/cgroup.py, docs/sandbox.md).
    cgroup_parent: str = ""

    # The executor (graders/executor.py `make_executor`): "warm" grades in pre-warmed children of a zygote, "cold"
    # starts a fresh sandboxed Python per submission. The warm pool falls back to cold start by itself when it
    # cannot run (no bwrap or cgroups, GRADAX_SANDBOX=none). `gradax grade` is cold unless GRADAX_POOL=warm is
    # set explicitly (graders/cli.py).
    pool: Literal["warm", "cold"] = "warm"
    # Children alive at once for problems graded recently (warming, ready, or grading; spares aside): bounds the
    # pool's memory (~75-150 MB each). A ready child waits at no CPU cost, and a problem whose children were given
    # up for problems graded since borrows a child warmed for another (its first compilations then run in the
    # submission's time: 0.2-0.9 s instead of ~0.1 s). -1: an eighth of the machine's memory (or its cgroup
    # limit) at 150 MB each, from 4 to 32.
    pool_size: int = -1
    # Ready children kept per problem that was graded recently.
    pool_prefork: int = 2
    # Spare children of prepared problems kept on top of pool_size, one per problem (in curriculum order) that
    # is not hot, so that a problem's first submission takes a child warmed for it (~200 MB each). -1: a quarter
    # of the machine's memory (or its cgroup limit) at 200 MB each, at most 32.
    pool_spares: int = -1
    # A ready child older than this is replaced (fresh process, fresh state), and the zygote after
    # `pool_zygote_recycle_s` when nothing is in flight.
    pool_recycle_s: float = 600.0
    pool_zygote_recycle_s: float = 6 * 3600.0
    # A problem stays "hot" (children preforked for it) this long after its last submission.
    pool_hot_s: float = 1800.0
    # Longest a submission waits for a warm child before it is graded cold instead.
    pool_wait_s: float = 30.0

    @field_validator("data_dir", "problems_dir", "courses_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Resolved once, against the working directory at start-up: these paths are handed to bwrap
        # (which needs absolute bind sources) and to child processes that run with another cwd.
        return value.expanduser().absolute()

    @field_validator("pool", mode="before")
    @classmethod
    def _known_pool(cls, value: object) -> object:
        # Say which variable is wrong in the operator's words, not only "Input should be 'warm' or 'cold'".
        if value not in POOLS:
            raise ValueError(f"GRADAX_POOL={value!r} is not a known grading pool (known: 'cold', 'warm')")
        return value

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    def pool_children(self) -> int:
        """`pool_size`, or its default for this machine's memory."""
        if self.pool_size >= 0:
            return self.pool_size
        return children_for_memory(share=8, mb_each=POOL_CHILD_MB, low=MIN_POOL, high=MAX_POOL, unknown=MIN_POOL)

    def spare_children(self) -> int:
        """`pool_spares`, or its default for this machine's memory."""
        if self.pool_spares >= 0:
            return self.pool_spares
        return children_for_memory(share=4, mb_each=SPARE_MB, low=0, high=MAX_SPARES, unknown=2)


def children_for_memory(*, share: int, mb_each: int, low: int, high: int, unknown: int) -> int:
    """How many children of `mb_each` MB fit in 1/`share` of the machine's memory (or its cgroup limit), from `low`
    to `high`; `unknown` when the memory cannot be read."""
    from graders.machine import memory_mb

    total = memory_mb()
    return unknown if total is None else max(low, min(high, total // share // mb_each))


MAX_SPARES, SPARE_MB = 32, 200
MIN_POOL, MAX_POOL, POOL_CHILD_MB = 4, 32, 150


@lru_cache(maxsize=1)
def get_settings() -> GraderSettings:
    return GraderSettings()
