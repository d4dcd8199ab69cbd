"""The warm pool grades like the cold path and keeps every submission as isolated as a cold one."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from graders import executor as executor_module
from graders import zygote_client
from graders.compile_profile import replay_cache_dir
from graders.engine import Grader
from graders.executor import ColdExecutor
from graders.pool import WarmPool
from graders.problem import LoadedProblem, ProblemBank
from graders.sandbox import ChildOutcome
from graders.settings import GraderSettings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pool")]

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "nnx-module-basics"
REFERENCE = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()
WRONG = """
import jax
from flax import nnx
def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    return x @ jax.random.normal(rngs.params(), (x.shape[-1], int(features)))
"""
RUNTIME_ERROR = "def module_basics_forward(seed, x, features):\n    return undefined_name\n"
SYNTAX_ERROR = "def module_basics_forward(seed, x, features)\n    return x\n"
CORRECT_BODY = """
def module_basics_forward(seed, x, features):
    import jax
    import jax.numpy as jnp
    from flax import nnx
    class K(nnx.Module):
        def __init__(self, n, m, rngs):
            self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, m)) * (1 / jnp.sqrt(n)))
    k = K(x.shape[-1], int(features), nnx.Rngs(int(seed)))
    return x @ k.kernel[...]
"""
# Counts, in the interpreter itself, how many submissions this process has run.
ONCE_PER_PROCESS = """
import builtins, jax
seen = getattr(builtins, "_gradax_seen", 0)
builtins._gradax_seen = seen + 1
if seen:
    raise RuntimeError("this process already ran another submission")
""" + CORRECT_BODY
POLLUTER = """
import jax, jax.numpy as jnp, threading, time, os
jax.config.update("jax_enable_x64", True)
jnp.matmul = lambda a, b: a.sum()
jax.numpy.matmul = jnp.matmul
threading.Thread(target=lambda: time.sleep(3600), name="gradax-leftover", daemon=True).start()
with open("/tmp/gradax-leftover", "w") as fh:
    fh.write("left behind")
os.environ["GRADAX_LEFTOVER"] = "1"
""" + CORRECT_BODY
INSPECTOR = """
import jax, jax.numpy as jnp, threading, os
problems = []
if jax.config.jax_enable_x64:
    problems.append("x64 is on")
if getattr(jnp.matmul, "__name__", "") == "<lambda>":
    problems.append("jnp.matmul is patched")
if any(t.name == "gradax-leftover" for t in threading.enumerate()):
    problems.append("a thread was left over")
if os.path.exists("/tmp/gradax-leftover"):
    problems.append("a /tmp file was left over")
if "GRADAX_LEFTOVER" in os.environ:
    problems.append("the environment was changed")
if os.nice(0) != 0:
    problems.append("still at the warm-up's low priority")
if problems:
    raise RuntimeError("; ".join(problems))
""" + CORRECT_BODY
KILL_ALL = """
import os, signal
def module_basics_forward(seed, x, features):
    os.kill(-1, signal.SIGKILL)
    os.kill(1, signal.SIGKILL)
    return x
"""
# A helper it forks leaves the submission's process group and signals that group and the session, stop then kill,
# every way there is: a warm child shares neither with the other children, so only its own run ends. The
# submission's own process is stopped and killed too (it is not its namespace's init, which the kernel would spare),
# as on the cold path.
SIGNAL_GROUP = """
import os, signal, time
def module_basics_forward(seed, x, features):
    group = os.getpgrp()
    if os.fork() == 0:
        os.setpgid(0, 0)
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for target in (lambda: os.killpg(group, sig), lambda: os.kill(-group, sig),
                           lambda: os.killpg(os.getsid(0), sig)):
                try:
                    target()
                except OSError:
                    pass
        os._exit(0)
    time.sleep(5)
    os.kill(0, signal.SIGKILL)
    raise RuntimeError("still running after signalling its process group")
"""
# Correct, but slow enough to be running while another submission signals everything it can.
SLOW_CORRECT = "import time\ntime.sleep(2)\n" + CORRECT_BODY
# Runs at import, in the child: its /proc shows only itself, and its /tmp only its own files.
SEES_SIBLING = """
import os, time, glob
mine = "/tmp/gradax-sibling-%d-%f" % (os.getpid(), time.time())
open(mine, "w").write("x")
pids = sorted(p for p in os.listdir("/proc") if p.isdigit())
if pids != sorted(["1", str(os.getpid())]):  # its namespace's init, and itself
    raise RuntimeError("sees other processes: %s" % pids)
deadline = time.time() + 1.5
while time.time() < deadline:
    others = [p for p in glob.glob("/tmp/gradax-sibling-*") if p != mine]
    if others:
        raise RuntimeError("saw another submission's file: %s" % others)
    time.sleep(0.05)
""" + CORRECT_BODY
ALLOCATE_1_GIB = """
import numpy as np
def module_basics_forward(seed, x, features):
    block = np.ones(2**27)  # 1 GiB of float64, every page touched
    return block[: int(features)] * x.sum()
"""
ALLOCATE_8_GIB = """
import numpy as np
def module_basics_forward(seed, x, features):
    return np.ones(2**30)[: int(features)]
"""
# Runs at import, in a warm child whose backend threads already exist: every thread is filtered, and
# the denied calls fail with EPERM from the main thread and from a thread the submission starts.
SECCOMP_PROBE = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
def modes():
    found = {}
    for tid in os.listdir("/proc/self/task"):
        for line in open("/proc/self/task/%s/status" % tid):
            if line.startswith(("Seccomp:", "NoNewPrivs:")):
                key, value = line.split(":")
                found.setdefault(key, set()).add(int(value))
    return len(os.listdir("/proc/self/task")), found
def denied():
    return {"ptrace": (libc.syscall(101, 0, 0, 0, 0), ctypes.get_errno()),
            "unshare": (libc.unshare(0x10000000), ctypes.get_errno()),
            "mount": (libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), ctypes.get_errno())}
threads, found = modes()
from_main = denied()
from_thread = {}
t = threading.Thread(target=lambda: from_thread.update(denied()))
t.start(); t.join()
expected = {name: (-1, 1) for name in ("ptrace", "unshare", "mount")}
if threads < 2 or found != {"Seccomp": {2}, "NoNewPrivs": {1}} or from_main != expected or from_thread != expected:
    raise RuntimeError("unfiltered: threads=%d modes=%s main=%s thread=%s" % (threads, found, from_main, from_thread))
if "GRADAX_SECCOMP" in os.environ:
    raise RuntimeError("GRADAX_SECCOMP leaked into the submission's environment")
""" + CORRECT_BODY


@pytest.fixture(scope="module")
def settings(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> GraderSettings:
    """A copy of the problem with a generous time limit: the cold comparison runs on a busy 2-core box."""
    base = tmp_path_factory.mktemp("pool-bank")
    (base / "problems").mkdir()
    (base / "reference_solutions").mkdir()
    data = yaml.safe_load((ROOT / "problems" / f"{PROBLEM}.yaml").read_text())
    data["limits"]["time_s"] = 30
    (base / "problems" / f"{PROBLEM}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (base / "reference_solutions" / "nnx_module_basics.py").write_text(REFERENCE)
    return GraderSettings(data_dir=data_dir, problems_dir=base / "problems")


@pytest.fixture(scope="module")
def bank(settings: GraderSettings) -> ProblemBank:
    return ProblemBank(settings.problems_dir)


@pytest.fixture(scope="module")
def warm(settings: GraderSettings, bank: ProblemBank) -> Iterator[tuple[Grader, WarmPool]]:
    pool = WarmPool(settings.model_copy(update={"pool_size": 3, "pool_prefork": 2}))
    grader = Grader(bank, settings, executor=pool)
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    pool.prewarm(loaded, grader.limits_for(loaded))
    assert pool.wait_ready(loaded, 1, timeout=300), pool.failure
    yield grader, pool
    pool.close()


def _grade(grader: Grader, code: str) -> tuple[str, str]:
    report = grader.grade(PROBLEM, code)
    return report.verdict.value, report.message or ""


def test_verdicts_match_the_cold_path(warm: tuple[Grader, WarmPool], settings: GraderSettings,
                                      bank: ProblemBank) -> None:
    grader, pool = warm
    cold = Grader(bank, settings, executor=ColdExecutor())
    cold_wrong = cold.grade(PROBLEM, WRONG)
    warm_wrong = grader.grade(PROBLEM, WRONG)
    assert warm_wrong.verdict == cold_wrong.verdict == "wrong_answer"
    assert [t.status for t in warm_wrong.tests] == [t.status for t in cold_wrong.tests]
    assert warm_wrong.diagnosis == cold_wrong.diagnosis is not None
    assert _grade(grader, REFERENCE)[0] == "accepted"
    assert _grade(grader, RUNTIME_ERROR)[0] == "runtime_error"
    assert _grade(grader, SYNTAX_ERROR)[0] == "syntax_error"
    assert pool.stats["warm"] >= 4 and pool.stats["cold"] == 0


def test_warm_grading_is_fast_once_warm(warm: tuple[Grader, WarmPool], bank: ProblemBank) -> None:
    grader, pool = warm
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    assert pool.wait_ready(loaded, 1, timeout=120)
    report = grader.grade(PROBLEM, REFERENCE)
    assert report.verdict == "accepted"
    # A cold start spends >1 s importing jax before it is ready; a warm child is ready at once.
    assert report.timings["startup_ms"] < 500


def test_a_child_never_serves_two_submissions(warm: tuple[Grader, WarmPool]) -> None:
    grader, pool = warm
    before = pool.stats["forked"]
    verdicts = [_grade(grader, ONCE_PER_PROCESS) for _ in range(3)]
    assert verdicts == [("accepted", "All 7 tests passed.")] * 3
    assert pool.stats["forked"] - before >= 2


def test_a_warm_childs_collections_skip_what_it_inherited_and_warmed(warm: tuple[Grader, WarmPool]) -> None:
    """The zygote freezes its objects before each fork and the child its warm-up's before a submission
    (`gc.freeze`): a collection in the child then walks only what the submission made, instead of every
    object jax and flax left in the heap, which wrote to each inherited page (copy-on-write) and cost
    nnx-layernorm's warm run ~200 -> ~130 ms (interleaved side by side). The collector stays on."""
    grader, _ = warm
    code = "import gc\nprint('gc', gc.isenabled(), gc.get_freeze_count())\n" + REFERENCE
    report = grader.grade(PROBLEM, code)
    assert report.verdict == "accepted", report.message
    words = next(line for line in report.stdout.splitlines() if line.startswith("gc ")).split()
    assert words[1] == "True" and int(words[2]) > 100_000, report.stdout
    assert report.timings.get("startup_ms", 0) < 1000  # a warm child, not the cold fallback


def test_state_mutation_does_not_reach_the_next_submission(warm: tuple[Grader, WarmPool]) -> None:
    grader, _ = warm
    verdict, message = _grade(grader, POLLUTER)
    assert verdict in ("accepted", "wrong_answer", "runtime_error"), message  # graded, whatever it returned
    for _ in range(2):
        verdict, message = _grade(grader, INSPECTOR)
        assert verdict == "accepted", message


def test_concurrent_submissions_cannot_see_each_other(warm: tuple[Grader, WarmPool]) -> None:
    grader, _ = warm
    with ThreadPoolExecutor(2) as executor:
        results = list(executor.map(lambda _: _grade(grader, SEES_SIBLING), range(2)))
    assert [v for v, _ in results] == ["accepted", "accepted"], results


def test_every_thread_of_a_warm_child_is_under_the_seccomp_filter(warm: tuple[Grader, WarmPool]) -> None:
    grader, pool = warm
    cold_before = pool.stats["cold"]
    verdict, message = _grade(grader, SECCOMP_PROBE)
    assert (verdict, pool.stats["cold"]) == ("accepted", cold_before), message


def test_a_run_that_reaches_its_memory_limit_says_so(warm: tuple[Grader, WarmPool],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine turns a time stop at the memory limit into memory_limit_exceeded only if the pool reports it."""
    grader, pool = warm
    outcomes: list[ChildOutcome] = []
    real = pool.grade

    def recording(*args: Any) -> ChildOutcome:
        outcomes.append(real(*args))
        return outcomes[-1]

    monkeypatch.setattr(pool, "grade", recording)
    verdict, message = _grade(grader, ALLOCATE_8_GIB)
    assert verdict == "memory_limit_exceeded", message
    assert len(outcomes) == 1 and outcomes[0].memory_limit_reached and pool.stats["cold"] == 0


def test_kill_minus_one_only_kills_its_own_submission(warm: tuple[Grader, WarmPool], bank: ProblemBank) -> None:
    grader, pool = warm
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    zygote_pid = pool.zygote_pid()
    assert pool.wait_ready(loaded, 1, timeout=120)
    verdict, _ = _grade(grader, KILL_ALL)
    assert verdict == "runtime_error"
    assert pool.healthy and pool.zygote_pid() == zygote_pid
    cold_before = pool.stats["cold"]
    assert _grade(grader, REFERENCE)[0] == "accepted"
    assert pool.stats["cold"] == cold_before


def test_signalling_its_process_group_reaches_no_other_child(warm: tuple[Grader, WarmPool],
                                                             bank: ProblemBank) -> None:
    """Row 24's class: kill(0) and killpg reach every process of the caller's process group, across PID
    namespaces. A warm child must not share one with the zygote's other children (all run as `nobody`), or one
    submission stops or kills every ready child and every submission graded at the same time."""
    grader, pool = warm
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    assert pool.wait_ready(loaded, 2, timeout=300), pool.failure
    key, _ = pool._profile(loaded)
    with pool._cond:
        ready = list(pool._ready[key])
    cold_before, failed_before = pool.stats["cold"], pool.stats["assign_failed"]
    with ThreadPoolExecutor(2) as executor:
        slow = executor.submit(_grade, grader, SLOW_CORRECT)
        time.sleep(0.5)
        hostile = executor.submit(_grade, grader, SIGNAL_GROUP)
        assert hostile.result()[0] == "runtime_error" and "killed by SIGKILL" in hostile.result()[1], hostile.result()
        assert slow.result() == ("accepted", "All 7 tests passed.")
    time.sleep(0.5)
    survivors = [child for child in ready if child.host_pid is not None and child.pidfd is not None]
    assert all(not child.exited() for child in survivors)
    assert all(_state(child.host_pid) != "T" for child in survivors if child.host_pid is not None)
    assert _grade(grader, REFERENCE)[0] == "accepted"
    assert (pool.stats["cold"], pool.stats["assign_failed"]) == (cold_before, failed_before)


def _state(pid: int) -> str:
    """A process's state letter from /proc (T: stopped), or "" if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _ready_child(pool: WarmPool, bank: ProblemBank, count: int = 1) -> zygote_client.PoolChild:
    """The first of `count` ready children of PROBLEM, once there are that many (it stays in the pool)."""
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    assert pool.wait_ready(loaded, count, timeout=300), pool.failure
    key, _ = pool._profile(loaded)
    with pool._cond:
        return pool._ready[key][0]


def test_a_ready_child_that_died_is_replaced_by_another_warm_child(warm: tuple[Grader, WarmPool],
                                                                   bank: ProblemBank) -> None:
    """A ready child killed before it is assigned (CI: by a stale-pid kill) costs a second warm child, not a
    cold start, and the pid it leaves behind is never moved into the run's cgroup."""
    grader, pool = warm
    victim = _ready_child(pool, bank, count=2)
    assert victim.host_pid is not None and not victim.exited()
    os.kill(victim.host_pid, 9)
    deadline = time.monotonic() + 10
    while not victim.exited() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert victim.exited()
    cold_before, failed_before = pool.stats["cold"], pool.stats["assign_failed"]
    assert _grade(grader, REFERENCE)[0] == "accepted"
    assert pool.stats["cold"] == cold_before
    assert pool.stats["assign_failed"] == failed_before + 1


def _copies(settings: GraderSettings, tmp_path: Path, ids: list[str]) -> tuple[Path, ProblemBank]:
    """Copies of the problem under other ids (same tests, same reference) in a bank of their own."""
    problems = tmp_path / "problems"
    problems.mkdir()
    (tmp_path / "reference_solutions").mkdir()
    for problem_id in ids:
        data = yaml.safe_load((settings.problems_dir / f"{PROBLEM}.yaml").read_text())
        data["id"] = problem_id
        (problems / f"{problem_id}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        (tmp_path / "reference_solutions" / f"{problem_id.replace('-', '_')}.py").write_text(REFERENCE)
    bank = ProblemBank(problems)
    assert not bank.errors, bank.errors
    return problems, bank


def test_a_problem_without_a_child_of_its_own_borrows_a_spare(settings: GraderSettings,
                                                             tmp_path: Path) -> None:
    """The pool keeps spares of stocked (prepared) problems while nothing is hot, and a problem's first
    submission takes one warmed for another problem: no fork and warm-up to wait for, and no cold start."""
    problems, _ = _copies(settings, tmp_path, [PROBLEM, f"{PROBLEM}-b"])
    with _a_spare_and_another_problem(settings, problems, f"{PROBLEM}-b") as (pool, grader, other):
        report = grader.grade(other.id, REFERENCE)
        assert report.verdict == "accepted", report.message
        assert (pool.stats["stolen"], pool.stats["cold"], pool.stats["warm"]) == (1, 0, 1)
        assert pool.wait_ready(other, 1, timeout=300), pool.failure  # then one of its own, for the next


@contextlib.contextmanager
def _a_spare_and_another_problem(settings: GraderSettings, problems: Path,
                                 other_id: str) -> Iterator[tuple[WarmPool, Grader, LoadedProblem]]:
    """A pool (size 2, prefork 1) that keeps a spare of PROBLEM, though nothing was graded yet, and `other_id`."""
    bank = ProblemBank(problems)
    assert not bank.errors, bank.errors
    here = settings.model_copy(update={"problems_dir": problems, "pool_size": 2, "pool_prefork": 1})
    pool = WarmPool(here)
    try:
        grader = Grader(bank, here, executor=pool)
        stocked, other = bank.get(PROBLEM), bank.get(other_id)
        assert stocked is not None and other is not None
        pool.stock(stocked, grader.limits_for(stocked))
        assert pool.wait_ready(stocked, 1, timeout=300), pool.failure
        yield pool, grader, other
    finally:
        pool.close()


def test_each_stocked_problem_gets_a_spare_of_its_own_up_to_pool_spares(settings: GraderSettings,
                                                                        tmp_path: Path) -> None:
    """Spares are one per prepared problem that is not hot, in the order offered, up to `pool_spares` and outside
    `pool_size`: the first submission of a problem with a spare is graded by a child warmed for it (nothing
    borrowed, test above for borrowing), and a problem that turns hot hands its place to the next one."""
    ids = [PROBLEM, f"{PROBLEM}-b", f"{PROBLEM}-c"]
    problems, bank = _copies(settings, tmp_path, ids)
    here = settings.model_copy(update={"problems_dir": problems, "pool_size": 1, "pool_prefork": 1,
                                       "pool_spares": 2})
    pool = WarmPool(here)
    try:
        grader = Grader(bank, here, executor=pool)
        loaded = [bank.get(problem_id) for problem_id in ids]
        assert all(x is not None for x in loaded)
        for x in loaded:
            pool.stock(x, grader.limits_for(x))  # type: ignore[arg-type]
        # Two spares, though pool_size is 1: a and b each have one, c (the third offered) none.
        assert pool.wait_ready(loaded[0], 1, timeout=300) and pool.wait_ready(loaded[1], 1, timeout=300)
        time.sleep(1.0)
        key_c, _ = pool._profile(loaded[2])  # type: ignore[arg-type]
        with pool._cond:
            assert not pool._ready[key_c] and not pool._warming[key_c]
        assert grader.grade(ids[1], REFERENCE).verdict == "accepted"
        assert (pool.stats["stolen"], pool.stats["cold"]) == (0, 0), "b's first submission took b's own spare"
        # b is hot now (its children count against pool_size): the spare it held goes to c.
        assert pool.wait_ready(loaded[2], 1, timeout=300), pool.failure  # type: ignore[arg-type]
        assert grader.grade(ids[2], REFERENCE).verdict == "accepted"
        assert (pool.stats["stolen"], pool.stats["cold"]) == (0, 0), "c's first submission took c's own spare"
    finally:
        pool.close()


def test_the_problem_graded_now_gets_children_of_its_own_in_a_full_pool(settings: GraderSettings,
                                                                        tmp_path: Path) -> None:
    """A pool full of ready children of a problem graded earlier gives one up for the problem graded now: over
    HTTP, without it, every submission of the new problem borrowed a child warmed for another and paid its own
    tracing (initializers 266-325 ms a run instead of 22 ms)."""
    ids = [PROBLEM, f"{PROBLEM}-b"]
    problems, bank = _copies(settings, tmp_path, ids)
    here = settings.model_copy(update={"problems_dir": problems, "pool_size": 2, "pool_prefork": 2,
                                       "pool_spares": 0})
    pool = WarmPool(here)
    try:
        grader = Grader(bank, here, executor=pool)
        a, b = bank.get(ids[0]), bank.get(ids[1])
        assert a is not None and b is not None
        pool.prewarm(a, grader.limits_for(a))
        assert pool.wait_ready(a, 2, timeout=300), pool.failure  # the pool is full of a's children
        assert grader.grade(ids[1], REFERENCE).verdict == "accepted"  # b's first: lends one of a's
        assert pool.stats["stolen"] == 1
        assert pool.wait_ready(b, 2, timeout=120), "b never got children of its own"
        assert pool.stats["evicted"] >= 1
        assert grader.grade(ids[1], REFERENCE).verdict == "accepted"
        assert (pool.stats["stolen"], pool.stats["cold"]) == (1, 0)
    finally:
        pool.close()


def test_a_problem_graded_earlier_keeps_its_child_while_others_are_graded(settings: GraderSettings,
                                                                        tmp_path: Path) -> None:
    """A student who works through problems and comes back to one finds a child warmed for it. With room for only
    four children of problems in use (the old default), the problems graded since took them: on the whole bank,
    coming back to 8 problems was p50 464-522 ms against 94-111 ms with the memory-sized default
    (docs/performance.md, "Coming back to a problem")."""
    ids = [PROBLEM, f"{PROBLEM}-b", f"{PROBLEM}-c"]
    problems, bank = _copies(settings, tmp_path, ids)
    here = settings.model_copy(update={"problems_dir": problems, "pool_size": -1, "pool_prefork": 1,
                                       "pool_spares": 0})
    assert here.pool_children() >= len(ids), "this test needs a machine with memory for 3 children in use"
    pool = WarmPool(here)
    try:
        grader = Grader(bank, here, executor=pool)
        loaded = [bank.get(problem_id) for problem_id in ids]
        for problem_id, x in zip(ids, loaded, strict=True):
            assert grader.grade(problem_id, REFERENCE).verdict == "accepted"
            assert pool.wait_ready(x, 1, timeout=300), pool.failure  # type: ignore[arg-type]
        stolen = pool.stats["stolen"]
        assert grader.grade(ids[0], REFERENCE).verdict == "accepted"
        assert (pool.stats["stolen"], pool.stats["evicted"], pool.stats["cold"]) == (stolen, 0, 0)
    finally:
        pool.close()


def test_a_dead_zygote_falls_back_to_cold_and_the_pool_recovers(warm: tuple[Grader, WarmPool],
                                                               bank: ProblemBank) -> None:
    grader, pool = warm
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    pid = pool.zygote_pid()
    assert pid is not None
    zygotes_before = pool.stats["zygotes"]
    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while pool.healthy and time.monotonic() < deadline:
        time.sleep(0.05)
    cold_before = pool.stats["cold"]
    # The next submission does not wait for a new zygote: it is graded cold at once.
    assert _grade(grader, REFERENCE)[0] == "accepted"
    assert pool.stats["cold"] == cold_before + 1
    assert pool.wait_ready(loaded, 1, timeout=300), pool.failure
    assert pool.healthy and pool.zygote_pid() != pid and pool.stats["zygotes"] >= zygotes_before + 1
    warm_before = pool.stats["warm"]
    assert _grade(grader, REFERENCE)[0] == "accepted"
    assert pool.stats["warm"] == warm_before + 1


@pytest.fixture
def broken_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """bwrap refuses the zygote's command line: the zygote cannot start."""
    real = zygote_client.bwrap_argv

    def broken(*args: object, **kwargs: object) -> list[str]:
        argv = real(*args, **kwargs)  # type: ignore[arg-type]
        return [argv[0], "--no-such-bwrap-option", *argv[1:]]

    monkeypatch.setattr(zygote_client, "bwrap_argv", broken)


@pytest.mark.usefixtures("broken_bwrap")
def test_a_zygote_that_cannot_start_falls_back_to_cold(settings: GraderSettings, bank: ProblemBank) -> None:
    pool = WarmPool(settings.model_copy(update={"pool_size": 1, "pool_prefork": 1}))
    try:
        grader = Grader(bank, settings, executor=pool)
        assert _grade(grader, REFERENCE)[0] == "accepted"
        assert pool.stats["cold"] == 1 and not pool.healthy
        assert pool.failure and "zygote" in pool.failure
    finally:
        pool.close()


def test_make_executor_honours_the_settings(settings: GraderSettings) -> None:
    assert isinstance(executor_module.make_executor(settings.model_copy(update={"pool": "cold"})), ColdExecutor)
    unsandboxed = settings.model_copy(update={"sandbox": "none", "pool": "warm"})
    executor = executor_module.make_executor(unsandboxed)
    assert isinstance(executor, ColdExecutor) and not executor.sandboxed
    warm_pool = executor_module.make_executor(settings.model_copy(update={"pool": "warm", "pool_size": 2}))
    try:
        assert isinstance(warm_pool, WarmPool) and warm_pool.settings.pool_size == 2
    finally:
        if isinstance(warm_pool, WarmPool):
            warm_pool.close()


def test_the_default_relative_data_dir_starts_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run` keeps data in ./.gradax: a relative path, which bwrap cannot bind; the pool must still start."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GRADAX_DATA_DIR", raising=False)
    relative = GraderSettings()
    assert relative.data_dir == tmp_path / ".gradax" and relative.cache_dir.is_absolute()
    replay_cache_dir(relative.cache_dir).mkdir(parents=True)
    monkeypatch.chdir("/")  # the server may be asked from anywhere once started
    zygote = zygote_client.Zygote(replay_cache_dir(relative.cache_dir), generation=1)
    try:
        assert zygote.alive()
    finally:
        zygote.stop()


@pytest.mark.usefixtures("broken_bwrap")
def test_waiting_for_a_pool_that_cannot_start_returns_at_once(settings: GraderSettings, bank: ProblemBank) -> None:
    pool = WarmPool(settings.model_copy(update={"pool_size": 1, "pool_prefork": 1}))
    try:
        loaded = bank.get(PROBLEM)
        assert loaded is not None
        pool.prewarm(loaded)
        start = time.monotonic()
        assert not pool.wait_ready(loaded, 1, timeout=120)
        assert time.monotonic() - start < 30 and pool.failure and "zygote" in pool.failure
    finally:
        pool.close()


def test_start_brings_the_zygote_up_before_any_submission(settings: GraderSettings) -> None:
    pool = WarmPool(settings.model_copy(update={"pool_size": 1, "pool_prefork": 1}))
    try:
        assert not pool.healthy
        pool.start()  # what the server and `gradax worker` call at start-up
        deadline = time.monotonic() + 120
        while not pool.healthy and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.healthy and pool.stats["forked"] == 0  # no child until a problem is hot
        pid = pool.zygote_pid()
        time.sleep(1.0)  # the starting thread has ended: bwrap's parent-death signal must not follow it
        assert pool.healthy and pool.zygote_pid() == pid and pool.stats["zygotes"] == 1
    finally:
        pool.close()


CASES = ROOT / "tests" / "attacks" / "cases"


def _case(name: str, **values: str) -> str:
    text = (CASES / f"{name}.py").read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def test_children_graded_at_once_cannot_talk(warm: tuple[Grader, WarmPool], settings: GraderSettings,
                                             bank: ProblemBank) -> None:
    """ATTACKS row 35 through one warm pool (two children of one zygote) and through the cold sandbox: two
    submissions graded at once each open a pty, a /dev/shm file, a System V segment and an abstract socket
    and look for the other's. Each warm child has its own devpts instance (the zygote's was shared)."""
    grader, pool = warm
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    cold = Grader(bank, settings, executor=ColdExecutor())
    for which in (grader, cold):
        assert which is cold or pool.wait_ready(loaded, 2, timeout=120)
        pair = os.urandom(4).hex()
        codes = [_case("35_pty_shm_channel", __SELF__=f"gxA{pair}", __OTHER__=f"gxB{pair}", __PAIR__=pair),
                 _case("35_pty_shm_channel", __SELF__=f"gxB{pair}", __OTHER__=f"gxA{pair}", __PAIR__=pair)]
        cold_before = pool.stats["cold"]
        with ThreadPoolExecutor(2) as executor:
            results = list(executor.map(functools.partial(_grade, which), codes))
        assert [v for v, _ in results] == ["accepted", "accepted"], results
        assert which is cold or pool.stats["cold"] == cold_before


def test_nothing_a_submission_leaves_reaches_the_next_child(warm: tuple[Grader, WarmPool], settings: GraderSettings,
                                                            bank: ProblemBank) -> None:
    """ATTACKS row 39, warm and cold: a daemon holding a pty and an abstract socket, files in /tmp and
    /dev/shm, a System V segment and a JAX config change; the next submission finds none of it."""
    grader, pool = warm
    cold = Grader(bank, settings, executor=ColdExecutor())
    for which in (grader, cold):
        mark = f"gx39{os.urandom(4).hex()}"
        cold_before = pool.stats["cold"]
        verdict, message = _grade(which, _case("39a_leave_behind", __MARKER__=mark))
        assert verdict == "accepted", message
        verdict, message = _grade(which, _case("39b_find_leftovers", __MARKER__=mark))
        assert verdict == "accepted", message
        assert which is cold or pool.stats["cold"] == cold_before


# After its last result, the child leaves a process of its own behind, or hangs in its final flush of stdout (its
# pipes stay open). The flush is deterministic: the child cannot exit before it, so the parent finds the pipes open
# however late it looks, and kills and waits for the run (0.5 s after `done`: the long sleep costs nothing). The
# leftover process is not: it lives in the child's pid namespace, whose init the child is, so the child's exit kills
# it; a parent that looks late (a loaded machine) rightly finds the group empty. What must hold either way: no
# leftover process outlives the grading.
LEAVES_A_PROCESS = """
import subprocess
subprocess.Popen(["sleep", "__SECONDS__"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL, start_new_session=True)
""" + CORRECT_BODY
SLOW_FINAL_FLUSH = """
import sys, time
class SlowOut:
    def write(self, text):
        return len(text)
    def flush(self):
        time.sleep(120)
sys.stdout = SlowOut()
""" + CORRECT_BODY


def _wait_for_tails(pool: WarmPool) -> None:
    """Until every run's exit and cgroup removal left to the background are done (at most 15 s)."""
    deadline = time.monotonic() + 15
    while (pool._tails or pool._run_groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pool._tails and not pool._run_groups


def test_a_clean_run_is_judged_without_waiting_for_its_child_to_exit(warm: tuple[Grader, WarmPool],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A child that sent its last result and closed its pipes, alone in its group, is not waited for: the kernel
    tearing a jax process down (~30 ms) is no part of the grading. Its exit and its group's removal follow in the
    background, and the run counts as busy until they are done. A child still holding its pipes is killed and waited
    for first; nothing a submission started outlives its grading."""
    grader, pool = warm
    left: list[Any] = []
    real = pool._finish_later

    def spy(child: Any, group: Any) -> None:
        left.append(group)
        real(child, group)

    monkeypatch.setattr(pool, "_finish_later", spy)
    verdict, message = _grade(grader, REFERENCE)
    assert verdict == "accepted", message
    assert len(left) == 1
    _wait_for_tails(pool)
    assert not [p for p in left[0].directories() if p.exists()]  # the run's cgroup is gone
    left.clear()
    verdict, message = _grade(grader, SLOW_FINAL_FLUSH)
    assert verdict == "accepted", message
    assert left == [], "a run whose child still held its pipes was not waited for"
    seconds = f"30.{random.randrange(10**6):06d}"  # names this run's leftover among the host's processes
    verdict, message = _grade(grader, LEAVES_A_PROCESS.replace("__SECONDS__", seconds))
    assert verdict == "accepted", message
    _wait_for_tails(pool)
    leftovers = [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", seconds]]
    assert leftovers == [], f"the submission's process outlived its grading: {leftovers}"


def test_the_first_submission_after_a_start_forks_one_child_and_no_more(settings: GraderSettings,
                                                                         bank: ProblemBank) -> None:
    """A pool with no zygote yet: the first submission starts it and forks one child for itself. With no child
    kept ready (`pool_prefork` 0), that is all: nothing is left warming or forked after it (the zygote's start
    used to reset the count of children warming, so the pool counted -1 for the problem and forked another)."""
    here = settings.model_copy(update={"pool_size": 2, "pool_prefork": 0})
    pool = WarmPool(here)
    try:
        grader = Grader(bank, here, executor=pool)
        for _ in range(2):
            report = grader.grade(PROBLEM, REFERENCE)
            assert report.verdict == "accepted", report.message
        time.sleep(3)  # the maintainer's round (every 2 s) would fork what the pool thinks is missing
        assert pool.stats["forked"] == 2 and pool.stats["warm"] == 2 and pool.stats["stolen"] == 0, pool.stats
        assert all(count == 0 for count in pool._warming.values()), dict(pool._warming)
        assert not any(pool._ready.values())
    finally:
        pool.close()


def _run_groups_of(pid: int) -> set[str]:
    """The run groups (`run-…`) a process is in, by /proc/<pid>/cgroup (one line per v1 hierarchy, one on v2)."""
    names = set()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        path = line.split(":", 2)[2]
        names |= {part for part in path.split("/") if part.startswith("run-")}
    return names


def test_a_ready_child_waits_in_the_group_of_its_run(warm: tuple[Grader, WarmPool], bank: ProblemBank,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Moving a process between cgroups waits for an RCU grace period (6-13 ms here): a ready child makes that move
    while it waits, into a group with its run's limits, in every controller, so its submission's grading starts
    without it. The group it waited in is the one it runs in, and it is gone after the run."""
    grader, pool = warm
    child = _ready_child(pool, bank)
    assert child.group is not None and child.host_pid is not None
    loaded = bank.get(PROBLEM)
    assert loaded is not None
    limits = grader.limits_for(loaded)
    assert child.group.limits == (limits.memory_mb * 2**20, limits.pids)
    assert _run_groups_of(child.host_pid) == {child.group.name}
    assert child.host_pid in child.group.pids()
    waited_in = child.group
    ran_in: list[Any] = []
    real = pool._finish_later
    monkeypatch.setattr(pool, "_finish_later", lambda c, group: (ran_in.append(group), real(c, group)))
    verdict, message = _grade(grader, REFERENCE)
    assert verdict == "accepted", message
    assert ran_in == [waited_in]
    _wait_for_tails(pool)
    assert not [p for p in waited_in.directories() if p.exists()]


def test_a_child_warmed_for_other_limits_runs_under_the_submissions(settings: GraderSettings,
                                                                    tmp_path: Path) -> None:
    """A child borrowed by a problem with a lower memory limit leaves the group it waited in (made for its own
    problem's limits) for one with the borrower's: 1 GiB in a 768 MiB problem is over its limit, though the
    child was warmed for 2 GiB. The group it left is removed."""
    problems, _ = _copies(settings, tmp_path, [PROBLEM, f"{PROBLEM}-small"])
    small = problems / f"{PROBLEM}-small.yaml"
    data = yaml.safe_load(small.read_text())
    data["limits"]["memory_mb"] = 768
    small.write_text(yaml.safe_dump(data, sort_keys=False))
    with _a_spare_and_another_problem(settings, problems, f"{PROBLEM}-small") as (pool, grader, other):
        assert grader.limits_for(other).memory_mb == 768
        lent = _ready_child(pool, grader.bank)
        assert lent.group is not None and lent.group.limits[0] > 768 * 2**20
        left = lent.group
        report = grader.grade(other.id, ALLOCATE_1_GIB)
        assert report.verdict == "memory_limit_exceeded", report.message
        assert (pool.stats["stolen"], pool.stats["cold"]) == (1, 0), pool.stats
        _wait_for_tails(pool)
        assert not [p for p in left.directories() if p.exists()]


def test_children_are_topped_up_between_runs_not_beside_them(settings: GraderSettings, bank: ProblemBank) -> None:
    """A child forked and warmed beside a run slows the run down (module-basics 37 -> 27 ms without): while a
    run is in progress, a problem that still has a child ready is not topped up to `pool_prefork`; it is once no
    run is. A problem left with no child at all gets one at once, run or not: its next submission needs it."""
    here = settings.model_copy(update={"pool_size": 3, "pool_prefork": 2})
    pool = WarmPool(here)
    try:
        grader = Grader(bank, here, executor=pool)
        loaded = bank.get(PROBLEM)
        assert loaded is not None
        pool.prewarm(loaded, grader.limits_for(loaded))
        assert pool.wait_ready(loaded, 2, timeout=300), pool.failure
        key, _ = pool._profile(loaded)
        forked = pool.stats["forked"]

        def during_the_run(what: Any) -> Any:
            """`what()` 0.5 s into a run that sleeps 2 s (the pool forked its replacement at once, when it did)."""
            with ThreadPoolExecutor(1) as executor:
                slow = executor.submit(_grade, grader, SLOW_CORRECT)
                deadline = time.monotonic() + 30
                while not pool._busy and time.monotonic() < deadline:  # assigned: its 2 s sleep starts now
                    time.sleep(0.01)
                time.sleep(0.5)
                with pool._cond:
                    seen = what()
                assert slow.result() == ("accepted", "All 7 tests passed."), slow.result()
            return seen

        seen = during_the_run(lambda: (len(pool._ready[key]), pool._warming[key], len(pool._busy)))
        assert seen == (1, 0, 1), seen  # one left ready, none forked beside the run
        assert pool.stats["forked"] == forked
        assert pool.wait_ready(loaded, 2, timeout=120), pool.failure  # topped up once the run was over
        assert pool.stats["forked"] == forked + 1

        # The last ready child taken: the problem gets one at once, beside the run.
        with pool._cond:
            spare = pool._ready[key].popleft()
        pool._discard(spare)
        seen = during_the_run(lambda: (len(pool._ready[key]) + pool._warming[key], len(pool._busy)))
        assert seen == (1, 1), seen
    finally:
        pool.close()
