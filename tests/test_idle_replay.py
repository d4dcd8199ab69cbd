"""A ready warm child replays the known mistakes' dispatches too while it waits, and stops for its request.

A known mistake is most of what students send; its primitives and shapes that the reference never used were loaded
during its run. A ready child now replays the profile's `extra` entries while nothing is asked of it, at nice 19
(graders/child/zygote.py `_warm_while_waiting`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import yaml

from graders.cases import build_cases
from graders.compile_profile import ProfileCache, RecordedProfile
from graders.engine import Grader
from graders.pool import WarmPool
from graders.problem import LoadedProblem, ProblemBank
from graders.settings import GraderSettings

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "nnx-layernorm"
MISTAKE = "batch-axis"  # statistics over the batch axis: reductions the reference never makes
# Counts, around every call the harness makes, the programs jax lowers that the process had not lowered before.
COUNTED = """
from jax._src import pjit as _pjit
_mistake = layer_norm_forward


def layer_norm_forward(x, scale, bias):
    before = _pjit._pjit_lower.cache_info().misses
    out = _mistake(x, scale, bias)
    print("lowered", _pjit._pjit_lower.cache_info().misses - before)
    return out
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> ProblemBank:
    base = tmp_path_factory.mktemp("idle-replay")
    (base / "problems").mkdir()
    (base / "reference_solutions").mkdir()
    data = yaml.safe_load((ROOT / "problems" / f"{PROBLEM}.yaml").read_text())
    data["limits"]["time_s"] = 60  # a busy 2-core box runs the test suite beside it
    (base / "problems" / f"{PROBLEM}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    reference = f"{PROBLEM.replace('-', '_')}.py"
    (base / "reference_solutions" / reference).write_text((ROOT / "reference_solutions" / reference).read_text())
    return ProblemBank(base / "problems")


def _mistake_code(loaded: LoadedProblem) -> str:
    mistake = next(m for m in loaded.problem.known_mistakes if m.id == MISTAKE)
    return mistake.code + COUNTED


@contextlib.contextmanager
def _pool(bank: ProblemBank, data_dir: Path, size: int = 2,
          prefork: int = 1) -> Iterator[tuple[WarmPool, Grader, LoadedProblem]]:
    settings = GraderSettings(data_dir=data_dir, problems_dir=bank.directory, pool_size=size, pool_prefork=prefork)
    pool = WarmPool(settings)
    try:
        grader = Grader(bank, settings, executor=pool)
        loaded = bank.get(PROBLEM)
        assert loaded is not None
        grader.reference_for(loaded)  # prepared: outputs and profile on disk before the first child forks
        yield pool, grader, loaded
    finally:
        pool.close()


def _ready_and_idle(pool: WarmPool, grader: Grader, loaded: LoadedProblem) -> None:
    """Until a ready child replayed what it had to and reads its request."""
    pool.prewarm(loaded, grader.limits_for(loaded))
    assert pool.wait_settled(loaded, timeout=120), pool.failure


def _lowered(stdout: str) -> list[int]:
    return [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("lowered ")]


def test_a_waiting_child_replays_the_known_mistakes_dispatches(bank: ProblemBank, data_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """After a child waited, a known mistake's calls lower next to nothing of their own; in a child that replayed
    only the reference's dispatches (the profile's `extra` left out), the same calls lower dozens of programs."""
    with _pool(bank, data_dir) as (pool, grader, loaded):
        # The profile has dispatches of the known mistakes' own.
        assert pool.profiles.recorded(loaded, build_cases(loaded.problem)).extra
        _ready_and_idle(pool, grader, loaded)
        waited = grader.grade(PROBLEM, _mistake_code(loaded))
    assert waited.verdict == "wrong_answer", waited.message
    real = ProfileCache.recorded
    monkeypatch.setattr(ProfileCache, "recorded",
                        lambda self, *a, **k: RecordedProfile(real(self, *a, **k).entries, []))
    with _pool(bank, data_dir) as (pool, grader, loaded):
        _ready_and_idle(pool, grader, loaded)
        without = grader.grade(PROBLEM, _mistake_code(loaded))
    assert without.verdict == "wrong_answer", without.message
    with_extra, without_extra = _lowered(waited.stdout), _lowered(without.stdout)
    assert with_extra and len(with_extra) == len(without_extra), (waited.stdout, without.stdout)
    assert sum(without_extra) >= 10, without_extra
    assert sum(with_extra) <= sum(without_extra) // 5, (with_extra, without_extra)


# A jitted library function on large zeros: ~0.1 s a call, whatever is cached.
SLOW_ENTRY = {"k": "jit", "m": "jax.numpy", "n": "matmul", "kw": {},
              "a": [{"a": [1200, 1200], "d": "float32"}, {"a": [1200, 1200], "d": "float32"}]}


def _slow_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles whose extra entries take ~20 s to replay."""
    real = ProfileCache.recorded
    monkeypatch.setattr(ProfileCache, "recorded",
                        lambda self, *a, **k: RecordedProfile(real(self, *a, **k).entries, [SLOW_ENTRY] * 200))


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _nice_values(pid: int) -> set[int]:
    return {psutil.Process(t.id).nice() for t in psutil.Process(pid).threads()}


def _state(pid: int) -> str:
    return psutil.Process(pid).status()


def _cpu(pid: int) -> float:
    return sum(psutil.Process(pid).cpu_times()[:2])


def test_ready_children_replay_only_while_no_run_is_in_progress(bank: ProblemBank, data_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay runs at nice 19, but nice does not keep it off the core a run leaves free, and a run beside one
    slowed down: while a submission is graded, the other ready children are stopped; once none is, they go on
    replaying. A child in the middle of a long replay stops at the entry its request comes in: the submission is
    graded at once, not after the ~20 s of replay left."""
    _slow_extra(monkeypatch)
    with _pool(bank, data_dir, size=3, prefork=2) as (pool, grader, loaded):
        pool.prewarm(loaded, grader.limits_for(loaded))
        assert pool.wait_ready(loaded, 2, timeout=300), pool.failure
        key, _ = pool._profile(loaded)
        with pool._cond:
            pids = [c.host_pid for c in pool._ready[key]]
        assert None not in pids and all(_state(p) != psutil.STATUS_STOPPED for p in pids if p is not None)
        # Past IDLE_AFTER_S, into the replay (a loaded machine may take a while).
        assert _eventually(lambda: all(_nice_values(p) == {19} for p in pids if p is not None))
        sleeper = "import time\ntime.sleep(3)\n" + loaded.reference_source.decode()
        with ThreadPoolExecutor(1) as executor:
            graded = executor.submit(grader.grade, PROBLEM, sleeper)
            deadline = time.monotonic() + 60
            while not pool._busy and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.5)
            with pool._cond:
                waiting = [c.host_pid for c in pool._ready[key] if c.host_pid is not None]
            assert waiting and not graded.done()
            assert {_state(p) for p in waiting} == {psutil.STATUS_STOPPED}
            before = [_cpu(p) for p in waiting]
            time.sleep(0.5)
            assert [_cpu(p) for p in waiting] == before
            report = graded.result(timeout=120)
        assert report.verdict == "accepted", report.message
        assert _eventually(lambda: all(_state(p) != psutil.STATUS_STOPPED for p in waiting))
        before = {p: _cpu(p) for p in waiting}
        assert _eventually(lambda: all(_cpu(p) > before[p] for p in waiting))  # replaying again
        start = time.monotonic()  # the children are replaying: one of them grades this
        report = grader.grade(PROBLEM, loaded.reference_source.decode())
        took = time.monotonic() - start
    assert report.verdict == "accepted", report.message
    assert took < 8.0, took
