"""Executors: what runs a harness request in a child and hands back what was observed.

One protocol (`Executor`) with two implementations, the cold sandbox (`ColdExecutor`, here) and the warm
pool (graders/pool.py `WarmPool`), and one factory (`make_executor`) that every caller builds them with:
the CLI, the server, the queue workers and the benchmark. Callers never ask an executor what it is: they
start it, grade with it, read its health and close it.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from graders import cgroup
from graders.problem import LoadedProblem
from graders.sandbox import run_harness
from graders.settings import GraderSettings, get_settings
from graders.supervision import ChildOutcome, SandboxLimits

ExecutorKind = Literal["cold", "warm"]


@dataclass(frozen=True)
class ExecutorHealth:
    """What an executor says about itself (metrics, `gradax grade`'s note on how it graded)."""

    kind: ExecutorKind
    healthy: bool  # able to serve its own way now (a cold executor always is)
    failure: str | None = None  # why it could not, last time it could not
    memory_bytes: int | None = None  # memory charged to what it keeps running; None: it keeps nothing
    runs: Mapping[str, int] | None = field(default=None)  # runs by path (warm, cold fallback, ...); None: not counted


class Executor(Protocol):
    """Runs a harness request for a problem in a child: the cold-start sandbox or a warm pool."""

    def start(self) -> None:
        """Start what the executor keeps running (a zygote), in the background; a no-op when there is none."""
        ...

    def grade(self, problem: LoadedProblem, request: bytes, limits: SandboxLimits) -> ChildOutcome:
        """Run the request in a child under `limits`; judging what it observed is the engine's job."""
        ...

    def stock(self, problem: LoadedProblem, limits: SandboxLimits | None = None) -> None:
        """A prepared problem the executor may keep spare children warmed for; a no-op when it keeps none."""
        ...

    def close(self) -> None:
        """Stop every process the executor keeps; it serves no more requests."""
        ...

    def health(self) -> ExecutorHealth: ...


@dataclass
class ColdExecutor:
    """A fresh sandboxed Python per submission: slow (imports jax every time) but simple. With `jax_cache_dir` (the
    replay cache) it compiles through that cache, read-only, as warm children do."""

    sandboxed: bool = True
    jax_cache_dir: Path | None = None

    def start(self) -> None:
        pass  # nothing kept running

    def grade(self, problem: LoadedProblem, request: bytes, limits: SandboxLimits) -> ChildOutcome:
        return run_harness(request, limits, sandboxed=self.sandboxed, jax_cache_dir=self.jax_cache_dir)

    def stock(self, problem: LoadedProblem, limits: SandboxLimits | None = None) -> None:
        pass  # nothing kept warm

    def close(self) -> None:
        pass

    def health(self) -> ExecutorHealth:
        return ExecutorHealth(kind="cold", healthy=True)


def make_executor(settings: GraderSettings | None = None, *, pool: ExecutorKind | None = None) -> Executor:
    """The executor to grade with: the warm pool unless `pool` (default: the `GRADAX_POOL` setting) is cold.

    With `GRADAX_SANDBOX=none` (trusted local use) there is no sandbox to keep warm: cold, unsandboxed. Without
    bwrap or usable cgroups the pool could never start: cold, sandboxed (which then fails closed).
    """
    settings = settings or get_settings()
    if settings.sandbox == "none":
        return ColdExecutor(sandboxed=False)
    if (pool or settings.pool) == "cold" or shutil.which("bwrap") is None or cgroup.available() is not None:
        from graders.compile_profile import replay_cache_dir

        return ColdExecutor(sandboxed=True, jax_cache_dir=replay_cache_dir(settings.cache_dir))
    from graders.pool import WarmPool  # the pool's imports are heavy; cold-only tools never need them

    return WarmPool(settings)
