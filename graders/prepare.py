"""Prepare problems before students arrive: reference outputs, known-mistake outputs, compile profiles.

Each problem needs three trusted computations before its first submission can be graded at warm speed:
the reference and known-mistake outputs (graders/reference.py), the compile profile recorded from the
reference, and the replay cache the warm children read (graders/compile_profile.py). Done lazily, the first
student of each problem waited 7-36 s for them. `prepare` does them up front, several problems at once.

The work runs in trusted child processes (the reference runner, the profile recorder, the replay filler),
so threads here only wait on them; `workers` bounds how many problems are prepared at once (default: the
cores). Everything it writes is keyed by the problem's content and written atomically, and each problem is
prepared under a file lock in the data dir, so `gradax prepare`, a running server and another `gradax
prepare` can work on the same data dir at once: one of them prepares a problem, the others wait and read.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal

from graders.cases import CaseInput, build_cases
from graders.compile_profile import ProfileCache, replay_cache_dir
from graders.filelock import file_lock
from graders.machine import affinity_cores
from graders.problem import LoadedProblem, ProblemBank
from graders.reference import ReferenceCache, ReferenceOutputs
from graders.settings import GraderSettings, get_settings

log = logging.getLogger("gradax.prepare")
Status = Literal["prepared", "cached", "failed"]


class UnknownProblems(KeyError):
    """Problem ids that are not in the bank (missing, or their file is invalid)."""

    def __init__(self, ids: Sequence[str], bank: ProblemBank):
        self.ids = list(ids)
        broken = {p.stem: p for p in bank.errors}
        parts = [f"{i!r} (its file is invalid: {broken[i]})" if i in broken else repr(i) for i in self.ids]
        self.message = f"unknown problem{'s' if len(parts) > 1 else ''}: {', '.join(parts)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProblemPrepared:
    """What preparing one problem did: `prepared` (computed now), `cached` (found ready), or `failed`."""

    id: str
    status: Status
    duration_s: float
    error: str | None = None


@dataclass
class PrepareResult:
    problems: list[ProblemPrepared] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return all(p.status != "failed" for p in self.problems)

    def count(self, status: Status) -> int:
        return sum(p.status == status for p in self.problems)


def ensure_data_dirs(settings: GraderSettings) -> None:
    """Create the directories the sandbox binds, before anything starts that mounts them.

    On a fresh data dir the warm pool's zygote used to start before the first profile created the compile
    cache directory, and bwrap refused to bind it ("Can't find source path .../cache/jax").
    """
    replay = replay_cache_dir(settings.cache_dir)
    replay.mkdir(parents=True, exist_ok=True)
    os.chmod(replay, 0o755)  # read by the sandbox's unprivileged user
    (settings.cache_dir / "reference").mkdir(parents=True, exist_ok=True)
    # Before 2026-12 the pool bound `<cache>/jax`, which the reference's own recording filled (programs
    # compiled from reference code, ATTACKS.md row 34). Nothing reads it any more.
    shutil.rmtree(settings.cache_dir / "jax", ignore_errors=True)


def problem_lock(settings: GraderSettings, problem_id: str) -> AbstractContextManager[None]:
    """Held while one process prepares a problem; other processes (a server, another prepare) wait."""
    return file_lock(settings.cache_dir / "locks" / f"{problem_id}.lock")


class Preparer:
    """The caches one process prepares into; share one per process (they memoise what they read)."""

    def __init__(self, settings: GraderSettings | None = None):
        self.settings = settings or get_settings()
        self.references = ReferenceCache(self.settings.cache_dir)
        self.profiles = ProfileCache(self.settings.cache_dir)

    def is_prepared(self, loaded: LoadedProblem) -> bool:
        """Whether the problem's outputs, profile and replay cache are all on disk (cheap: file checks)."""
        return self.references.is_stored(loaded) and self.profiles.is_stored(loaded)

    def prepare_one(self, loaded: LoadedProblem) -> ProblemPrepared:
        start = time.monotonic()
        try:
            with problem_lock(self.settings, loaded.id):
                if self.is_prepared(loaded):
                    return ProblemPrepared(loaded.id, "cached", time.monotonic() - start)
                outputs_and_profile(self.references, self.profiles, loaded, build_cases(loaded.problem))
        except Exception as exc:  # a broken problem must not stop the others; say which and why
            log.exception("preparing %s failed", loaded.id)
            return ProblemPrepared(loaded.id, "failed", time.monotonic() - start, f"{type(exc).__name__}: {exc}")
        return ProblemPrepared(loaded.id, "prepared", time.monotonic() - start)


def outputs_and_profile(references: ReferenceCache, profiles: ProfileCache, loaded: LoadedProblem,
                        cases: list[CaseInput]) -> ReferenceOutputs:
    """A problem's outputs and its compile profile (with the replay cache filled), from the caches or computed.

    One trusted run computes the outputs and records the profile (one jax start and one reference run fewer
    than two runs); a profile needed when the outputs were cached already is recorded in a run of its own.
    """
    outputs = references.get(loaded, cases, record_profile=True)
    profiles.get(loaded, cases, outputs.profile)
    return outputs


def default_workers() -> int:
    """One problem per core: each is a trusted process that keeps a core busy."""
    return affinity_cores()


def prepare(bank: ProblemBank, problem_ids: Sequence[str] | None = None, settings: GraderSettings | None = None,
            workers: int | None = None, on_progress: Callable[[ProblemPrepared], None] | None = None,
            preparer: Preparer | None = None) -> PrepareResult:
    """Prepare the given problems (default: the whole bank), `workers` at a time (default: the cores).

    Raises UnknownProblems before doing anything when an id is not in the bank. A problem that fails is
    reported as `failed` and the others go on. `on_progress` is called (from a worker thread) as each ends.
    """
    settings = settings or get_settings()
    if problem_ids is None:
        selected = list(bank)
    else:
        unknown = [i for i in problem_ids if bank.get(i) is None]
        if unknown:
            raise UnknownProblems(unknown, bank)
        selected = [p for i in dict.fromkeys(problem_ids) if (p := bank.get(i)) is not None]
    ensure_data_dirs(settings)
    preparer = preparer or Preparer(settings)
    start = time.monotonic()
    result = PrepareResult()

    def one(loaded: LoadedProblem) -> ProblemPrepared:
        done = preparer.prepare_one(loaded)
        if on_progress is not None:
            on_progress(done)
        return done

    with ThreadPoolExecutor(max(1, workers or default_workers()), thread_name_prefix="gradax-prepare") as pool:
        result.problems = list(pool.map(one, selected))
    result.duration_s = time.monotonic() - start
    return result


def is_prepared(loaded: LoadedProblem, settings: GraderSettings | None = None) -> bool:
    """Whether `loaded` (this exact version) is prepared in the settings' data dir."""
    return Preparer(settings).is_prepared(loaded)


def format_line(done: ProblemPrepared) -> str:
    line = f"{done.status:9} {done.id} ({done.duration_s:.1f} s)"
    if done.error:
        line += f": {done.error}"
    return line


def format_summary(result: PrepareResult) -> str:
    parts = [f"{result.count('prepared')} prepared", f"{result.count('cached')} already prepared"]
    if result.count("failed"):
        parts.append(f"{result.count('failed')} FAILED")
    return f"{len(result.problems)} problems: {', '.join(parts)} in {result.duration_s:.1f} s"


__all__ = ["PrepareResult", "Preparer", "ProblemPrepared", "UnknownProblems", "ensure_data_dirs",
           "format_line", "format_summary", "is_prepared", "prepare", "problem_lock"]
