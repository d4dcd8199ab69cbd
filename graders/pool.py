"""The warm grading pool's scheduling: submissions graded in children forked from a zygote that imported jax.

This module decides which child serves which submission, how many are kept warm per problem and when they
are recycled; the host's side of the zygote and of one child's run is graders/zygote_client.py.

Why: a fresh Python per submission spends ~1 s importing jax/flax and ~1 s compiling. Here a zygote
(graders/child/zygote.py) imports the libraries once inside bubblewrap; children are forked ahead of demand,
each in namespaces of its own, dropped to `nobody`, with its backend started and the problem's compile
profile (graders/compile_profile.py) replayed, so a submission only pays for its own few milliseconds.

Isolation per submission is that of the cold path (see graders/sandbox.py): a child serves exactly
one request; it has its own PID, mount, network and IPC namespaces, its own tmpfs on /tmp and
/dev/shm, no capabilities, `no_new_privs`, the cold harness's seccomp filter (on every thread); the
host moves it into a fresh per-run cgroup (v1 or v2: memory, pids, CPU accounting, whole-group kill)
once it is ready, while it waits (or at assignment, for a submission with other limits), i.e. before
any submitted code runs; time and CPU are watched from outside exactly as
for a cold run; results come only over the pipe the host created. The only persistent compilation
cache a child sees is the replay cache, bound read-only: programs of library functions and primitives that a
trusted process compiled by replaying compile profiles on zeros, never anything compiled from reference or
submitted code (graders/compile_profile.py `fill_replay_cache`; ATTACKS.md row 34).

When the pool is unhealthy (bwrap or the zygote cannot start, the zygote died), `grade` falls back
to the cold path for that submission and the pool restarts the zygote in the background.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import platform
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from graders import cgroup
from graders.cases import build_cases
from graders.compile_profile import ProfileCache, RecordedProfile, replay_cache_dir
from graders.executor import ColdExecutor, ExecutorHealth
from graders.machine import affinity_cores, memory_available_mb
from graders.prepare import ensure_data_dirs
from graders.problem import LoadedProblem
from graders.sandbox import SandboxError
from graders.settings import MIN_POOL, GraderSettings, get_settings
from graders.supervision import ChildOutcome, RunMeter, SandboxLimits, finish_group, read_group
from graders.zygote_client import (
    PoolChild,
    PoolUnavailable,
    Zygote,
    exit_status,
    fork_limits,
    read_available,
    restore_priority,
    watch_child,
)

log = logging.getLogger("gradax.pool")
# A spare (or a hot problem's child beyond the first MIN_POOL) is forked only while the kernel could still give this
# much more without swapping: ready children are a speed-up, never a reason for the machine to run short.
SPARE_MEMORY_RESERVE_MB = 1024


def _memory_left_for_another_child() -> bool:
    available = memory_available_mb()
    return available is None or available >= SPARE_MEMORY_RESERVE_MB


# The number of `read` on this machine, for `_reads_its_request` (None: not known here).
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}.get(platform.machine())


def _reads_its_request(pid: int) -> bool | None:
    """Whether a ready child's main thread is blocked reading fd 0 (its request): done with what it replays while it
    waits (graders/child/zygote.py `_warm_while_waiting` ends in `_serve`'s read; before, it polls with `select`).
    From /proc/<pid>/syscall ("<nr> <arg0> ..." while blocked in a system call), which needs ptrace access (not in a
    container without CAP_SYS_PTRACE) and the machine's number of `read`: None where either is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] in ("T", "t"):  # stopped while a run is in progress (`_hold_waiting`)
        return False
    if READ_SYSCALL is None:
        return None
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()
    except PermissionError:
        return None
    except OSError:
        return False
    return len(call) > 1 and call[0] == str(READ_SYSCALL) and int(call[1], 16) == 0


def _group_limits(limits: SandboxLimits) -> tuple[int, int]:
    """The (memory bytes, pids) a run's group gets: what a waiting child's group must match to serve it."""
    return limits.memory_mb * 1024 * 1024, limits.pids


def _new_run_group(limits: tuple[int, int]) -> cgroup.RunCgroup:
    group = cgroup.RunCgroup(*limits)
    group.move_charges_on_join()  # a warm child's memory counts against the run's limit, as in a cold run
    return group


def _move_into(child: PoolChild, procs_files: list[str]) -> int:
    """Write the child's pid into these groups, and return it; first make sure the child is alive, so that its pid
    names no other process."""
    pid = child.host_pid
    assert pid is not None
    if child.exited():
        raise ProcessLookupError("the ready child exited before it was moved into its run's group")
    for path in procs_files:
        with open(path, "w") as fh:
            fh.write(str(pid))
    return pid


class WarmPool:
    """An `Executor` that grades in pre-warmed children of a zygote; cold start when unhealthy."""

    def __init__(self, settings: GraderSettings | None = None):
        self.settings = settings or get_settings()  # the pool's own knobs are its `pool_*` fields
        self.cold = ColdExecutor(sandboxed=True, jax_cache_dir=replay_cache_dir(self.settings.cache_dir))
        self.profiles = ProfileCache(self.settings.cache_dir)
        self._profile_keys: dict[str, tuple[str, RecordedProfile]] = {}  # by problem content hash
        self._cond = threading.Condition()
        self._zygote_lock = threading.Lock()
        self._zygote: Zygote | None = None
        self._generation = 0
        self._ready: dict[str, collections.deque[PoolChild]] = collections.defaultdict(collections.deque)
        self._warming: dict[str, int] = collections.defaultdict(int)
        self._busy: set[int] = set()
        # Runs whose child is left to exit (`_finish_later`), groups of children that ran nothing (`_remove_later`).
        self._tails: set[threading.Thread] = set()
        self._run_groups: dict[int, cgroup.RunCgroup] = {}
        self._hot: dict[str, tuple[float, RecordedProfile, SandboxLimits]] = {}
        # Prepared problems to keep a spare child of while they are not hot (`stock`), in the order offered.
        self._stock: dict[str, tuple[RecordedProfile, SandboxLimits]] = {}
        self._max_spares = self.settings.spare_children()
        self._max_children = self.settings.pool_children()  # for hot problems, spares aside
        self._cores = affinity_cores()
        self._last_failure: float | None = None
        self._failure: str | None = None
        self._closed = False
        self.stats: collections.Counter[str] = collections.Counter()
        self._waiting_cpu = (0.0, 0)  # CPU seconds ready children used before their request, and their runs
        self.warmup_s: collections.deque[float] = collections.deque(maxlen=256)  # fork to ready, per child
        # One thread that lives as long as the pool and starts every zygote (see _ensure_zygote_locked).
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradax-zygote-launcher")
        self._maintainer = threading.Thread(target=self._maintain, daemon=True, name="gradax-pool")
        self._maintainer.start()

    # ------------------------------------------------------------------ public surface

    def grade(self, problem: LoadedProblem, request: bytes, limits: SandboxLimits) -> ChildOutcome:
        zygote = self._zygote
        if zygote is not None and not zygote.alive():
            # Its children died with it. Grade this one cold now; restart the zygote in the background.
            threading.Thread(target=self._restart_quietly, daemon=True).start()
            return self._cold(problem, request, limits, f"the zygote died: {zygote.stderr()[-500:]}")
        # A ready child can die before it is assigned (nothing of the submission ran in it yet): try another
        # warm child once before the much slower cold start.
        for _ in range(2):
            try:
                key, profile = self._profile(problem)
                child = self._acquire(key, profile, limits)
            except (PoolUnavailable, cgroup.CgroupUnavailable, SandboxError, OSError, RuntimeError) as exc:
                return self._cold(problem, request, limits, str(exc))
            try:
                outcome = self._run(child, request, limits)
            finally:
                with self._cond:
                    self._cond.notify_all()
            if not outcome.start_error:
                self.stats["warm"] += 1
                return outcome
            self.stats["assign_failed"] += 1
            log.warning("%s; trying another warm child", outcome.start_error)
        return self._cold(problem, request, limits, outcome.start_error or "no warm child could be assigned")

    def start(self) -> None:
        """Start the zygote in the background, so the first submission after a server start does not wait
        for jax to be imported (~1.5 s); a failure here is retried on demand like any other. First, remove the
        groups that processes killed outright left behind (`cgroup.remove_leftovers`)."""
        def start() -> None:
            try:
                removed = cgroup.remove_leftovers()
            except Exception:  # never a reason not to start
                log.exception("removing leftover cgroups failed")
            else:
                if removed:
                    log.info("removed %d empty cgroups that killed processes left behind", removed)
            self._restart_quietly()

        threading.Thread(target=start, daemon=True, name="gradax-pool-start").start()

    def prewarm(self, problem: LoadedProblem, limits: SandboxLimits | None = None) -> None:
        """Mark a problem hot and start its children now (the server calls this at start-up)."""
        key, profile = self._profile(problem)
        with self._cond:
            self._hot[key] = (time.monotonic(), profile, limits or SandboxLimits())
        self._replenish()

    def stock(self, problem: LoadedProblem, limits: SandboxLimits | None = None) -> None:
        """Keep a spare child of this (prepared) problem, while it is not hot, within `pool_spares` and memory.

        The server offers every prepared problem in curriculum order: each gets one spare (the first
        `pool_spares` of them), so its first submission takes a child warmed for it, as later ones do. A problem
        beyond those, or whose spare was taken, borrows a ready child warmed for another (`_acquire`) instead of
        waiting for a fork and warm-up. Unlike `prewarm`, it never expires; spares do not count against
        `pool_size`, which bounds the children of hot problems.
        """
        key, profile = self._profile(problem)
        with self._cond:
            self._stock[key] = (profile, limits or SandboxLimits())
        self._replenish()

    def wait_ready(self, problem: LoadedProblem, count: int = 1, timeout: float = 120.0) -> bool:
        key, _ = self._profile(problem)
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._ready[key]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._zygote is None and self._last_failure is not None):
                    return False  # timed out, or the zygote cannot start: `failure` says why
                self._cond.wait(min(remaining, 1.0))
        return True

    def wait_settled(self, problem: LoadedProblem, timeout: float = 30.0) -> bool:
        """Wait for a ready child of `problem` that is done with what a ready child replays while it waits
        (graders/child/zygote.py `_warm_while_waiting`) and reads its request, as a student's next submission finds
        it on a server that is not busy. For `gradax bench --bank` and tests."""
        deadline = time.monotonic() + timeout
        if not self.wait_ready(problem, 1, timeout):
            return False
        key, _ = self._profile(problem)
        last: tuple[int, float] | None = None
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            with self._cond:
                pid = self._ready[key][0].host_pid if self._ready[key] else None
            reads = _reads_its_request(pid) if pid is not None else False
            if reads:
                return True
            if reads is None and pid is not None:  # no /proc/<pid>/syscall here: a second without CPU will do
                used = (pid, RunMeter.of_process(pid).cpu())
                if used != last:
                    last, quiet_since = used, time.monotonic()
                elif time.monotonic() - quiet_since >= 1.0:
                    return True
            time.sleep(0.05)
        return False

    @property
    def healthy(self) -> bool:
        return self._zygote is not None and self._zygote.alive()

    @property
    def failure(self) -> str | None:
        return self._failure

    def health(self) -> ExecutorHealth:
        return ExecutorHealth(kind="warm", healthy=self.healthy, failure=self._failure,
                              memory_bytes=self.memory_bytes(), runs=dict(self.stats))

    def zygote_pid(self) -> int | None:
        return self._zygote.proc.pid if self._zygote else None

    def memory_bytes(self) -> int:
        """Memory charged to the pool now: the zygote, its warming/ready children, and running children."""
        with self._cond:
            total = self._zygote.memory_bytes() if self._zygote else 0
            # A ready child's pages are charged to the run group it waits in (`_wait_in_run_group`).
            groups = list(self._run_groups.values()) + [c.group for q in self._ready.values() for c in q if c.group]
        for group in groups:
            try:
                total += group.memory_current()
            except OSError:
                pass
        return total

    def warm_cpu_snapshot(self) -> tuple[float, int]:
        """(CPU seconds the zygote's cgroup used so far, children forked so far): deltas between two snapshots
        give the warm-up CPU per child of what was forked in between (`gradax bench --bank`)."""
        zygote = self._zygote
        if zygote is None:
            return 0.0, 0
        return zygote.cpu_seconds() - zygote.cpu_at_ready, zygote.forked

    def waiting_cpu_snapshot(self) -> tuple[float, int]:
        """(CPU seconds that children used in their run's group before their request came, runs so far): what they
        replayed while they waited, per run between two snapshots (`gradax bench --bank`)."""
        with self._cond:
            return self._waiting_cpu

    def warmup_cpu_s(self) -> float | None:
        """CPU seconds per child spent before its submission (fork, backend start, replay), on average.

        Measured on the zygote's cgroup; a child leaves it for its run's group when it is ready.
        """
        zygote = self._zygote
        if zygote is None or not zygote.forked:
            return None
        return (zygote.cpu_seconds() - zygote.cpu_at_ready) / zygote.forked

    def close(self) -> None:
        with self._cond:
            self._closed = True
            zygote, self._zygote = self._zygote, None
            children = [c for q in self._ready.values() for c in q]
            self._ready.clear()
            self._cond.notify_all()
        for child in children:
            self._discard(child)
        with self._cond:
            tails = list(self._tails)
        for tail in tails:
            tail.join(timeout=10)
        if zygote is not None:
            zygote.stop()
        self._launcher.shutdown(wait=False)

    # ------------------------------------------------------------------ internals

    def _cold(self, problem: LoadedProblem, request: bytes, limits: SandboxLimits, why: str) -> ChildOutcome:
        log.warning("warm pool unavailable (%s); grading %s with a cold start", why, problem.id)
        self.stats["cold"] += 1
        with self._cond:
            self._failure = why
        return self.cold.grade(problem, request, limits)

    def _restart_quietly(self) -> None:
        try:
            self._ensure_zygote()
            self._replenish()
        except PoolUnavailable as exc:
            log.warning("the warm pool could not restart: %s", exc)

    def _profile(self, problem: LoadedProblem) -> tuple[str, RecordedProfile]:
        # Once per problem version: on every submission, building its cases again and hashing the profile
        # cost 2-3 ms of a ~100 ms warm grading. Children are told apart by what they replay before they are ready.
        known = self._profile_keys.get(problem.content_hash)
        if known is None:
            profile = self.profiles.recorded(problem, build_cases(problem.problem))
            digest = hashlib.sha256(json.dumps(profile.entries, sort_keys=True).encode()).hexdigest()[:12]
            known = self._profile_keys[problem.content_hash] = (f"{problem.id}:{digest}", profile)
        return known

    def _ensure_zygote(self) -> Zygote:
        with self._zygote_lock:  # one creator at a time, or two threads would each start a zygote
            return self._ensure_zygote_locked()

    def _ensure_zygote_locked(self) -> Zygote:
        with self._cond:
            if self._zygote is not None and self._zygote.alive():
                return self._zygote
            if self._closed:
                raise PoolUnavailable("the pool is closed")
            if self._last_failure is not None and time.monotonic() - self._last_failure < 5.0:
                raise PoolUnavailable(f"the zygote failed recently: {self._failure}")
            old, self._zygote = self._zygote, None
            # Children of a dead zygote died with it (bwrap's PID 1 took its namespace down); `_discard` below
            # removes the groups they waited in.
            dead = [child for q in self._ready.values() for child in q]
            self._ready.clear()
            # `_warming` is not reset: each count is a fork in progress, given back exactly once (by `_spawn` if the
            # fork fails, else by the child's `_await_ready`, which sees a dead zygote's children die). Resetting
            # it here made the first fork after any zygote start count -1 for good: the pool then forked one
            # child more than `pool_prefork` for that problem, beyond `pool_size`, and lent it to other problems.
            self._generation += 1
            generation = self._generation
        for child in dead:
            self._discard(child)
        if old is not None:
            old.stop()
        try:
            # Started from the pool's own long-lived thread: bwrap's --die-with-parent is PR_SET_PDEATHSIG,
            # which fires when the *thread* that forked it exits, so a zygote started from a short-lived
            # thread (a restart, a bench worker) would be SIGKILLed as soon as that thread ended.
            # The bound cache directory must exist before bwrap starts (a fresh data dir has none yet).
            ensure_data_dirs(self.settings)
            zygote = self._launcher.submit(Zygote, replay_cache_dir(self.settings.cache_dir), generation).result()
        except (PoolUnavailable, OSError, SandboxError, cgroup.CgroupUnavailable) as exc:
            with self._cond:
                self._last_failure = time.monotonic()
                self._failure = f"the zygote could not start: {exc}"
            raise PoolUnavailable(str(exc)) from exc
        with self._cond:
            self._zygote = zygote
            self._last_failure = None
            self.stats["zygotes"] += 1
            self._cond.notify_all()
        return zygote

    def _alive_count(self) -> int:
        return sum(len(q) for q in self._ready.values()) + sum(self._warming.values()) + len(self._busy)

    def _spawn(self, key: str, profile: RecordedProfile, limits: SandboxLimits) -> None:
        """Fork a child for `key`; a thread waits for it to become ready. Caller holds no lock."""
        zygote = self._ensure_zygote()
        try:
            child = zygote.fork(key, profile, limits)
        except PoolUnavailable:
            with self._cond:
                self._warming[key] -= 1
                self._cond.notify_all()
            raise
        self.stats["forked"] += 1
        threading.Thread(target=self._await_ready, args=(zygote, child, limits), daemon=True).start()

    def _await_ready(self, zygote: Zygote, child: PoolChild, limits: SandboxLimits) -> None:
        ready = False
        why = "timed out"
        try:
            readable, _, _ = select.select([child.fds["control"]], [], [], limits.startup_s)
            if readable:
                ready = os.read(child.fds["control"], 1) == b"R"
                why = "exited before it was ready"
            if ready:
                ready = zygote.attach(child)
                why = "its pid could not be found"
            if ready:
                self._wait_in_run_group(child, limits)
        except OSError as exc:
            ready, why = False, str(exc)
        if not ready and not self._closed:
            log.warning("a pool child failed to warm up (%s): %s", why, read_available(child.fds.get("stderr")))
        with self._cond:
            self._warming[child.key] -= 1
            if ready and child.generation == self._generation and not self._closed:
                child.ready_at = time.monotonic()
                self.warmup_s.append(child.ready_at - child.created)
                self._ready[child.key].append(child)
                self.stats["ready"] += 1
                if self._busy:
                    child.send_signal(signal.SIGSTOP)  # no replay beside a run (`_hold_waiting`)
            else:
                ready = False
                self.stats["warm_failed"] += 1
            self._cond.notify_all()
        if not ready:
            self._discard(child)
        self._replenish()  # a core is free again: the next fork ahead of demand, if any is wanted

    def _wait_in_run_group(self, child: PoolChild, limits: SandboxLimits) -> None:
        """Move a ready child into the group of the run it will serve now, while it waits, not at assignment.

        A process's first move between cgroups after a pause waits for the kernel's cgroup migration lock, an RCU
        grace period (6-13 ms measured here on the write to the first `cgroup.procs`, whichever controller that
        was; the following writes take ~0.02 ms): it took that out of every warm grading. The group gets the
        run's limits now, those of the problem the child was warmed for (`_run` makes a fresh group for a
        submission with other limits), so its memory counts against them from here (v1 moves its charges).
        Nothing runs in the child meanwhile: it only waits for a request, and the run's CPU counts from its
        `ready` (`watch_events`). Best effort: a child that could not move waits where it is and is moved at
        assignment, as before."""
        try:
            group = _new_run_group(_group_limits(limits))
        except (OSError, cgroup.CgroupUnavailable) as exc:
            log.warning("a ready child waits outside its run group: %s", exc)
            return
        try:
            _move_into(child, group.procs_files())
        except OSError as exc:
            log.warning("a ready child waits outside its run group: %s", exc)
            group.remove()  # kills the child if it got in: it is then found dead at assignment
            return
        child.group = group

    def _hold_waiting(self) -> None:
        """A run is in progress (caller holds the lock and has just added it to `_busy`): stop every ready child.

        A ready child replays the known mistakes' dispatches while it waits (graders/child/zygote.py
        `_warm_while_waiting`), at nice 19, but nice only orders processes that want the same core: beside a run
        the replay took the other one, and the run slowed down as it did beside a fork's warm-up (measured: the
        references' warm p50 up 10-15 %, p95 up to 2-3x). So ready children are stopped (SIGSTOP, through their
        pidfd) while any run is in progress, and continued when none is (`_resume_waiting`); one that is assigned is
        continued first (`_run`). A child idle in its read is not disturbed by either."""
        if len(self._busy) == 1:  # else held already when the other runs started
            self._signal_ready(signal.SIGSTOP)

    def _resume_waiting(self) -> None:
        """No run is in progress any more (caller holds the lock, after taking one out of `_busy`): continue every
        ready child (`_hold_waiting`)."""
        if not self._busy:
            self._signal_ready(signal.SIGCONT)

    def _signal_ready(self, signum: int) -> None:
        for queue in self._ready.values():
            for child in queue:
                child.send_signal(signum)

    def _discard(self, child: PoolChild) -> None:
        child.kill()
        group, child.group = child.group, None
        if group is None:
            child.close()
        else:
            self._remove_later(group, child)

    def _remove_later(self, group: cgroup.RunCgroup, killed: PoolChild | None = None) -> None:
        """Remove a group no run uses, in the background: once `killed` (its member, just killed) is gone, which
        takes a jax process ~30 ms; then close that child's ends."""
        def remove() -> None:
            try:
                if killed is not None and killed.pidfd is not None:
                    select.select([killed.pidfd], [], [], 5.0)
                group.remove()
            except Exception:  # logged; a leftover group keeps its name and holds nothing
                log.exception("removing the group of a child that ran nothing failed")
            finally:
                if killed is not None:
                    killed.close()

        self._in_background("gradax-group-removal", remove)

    def _in_background(self, name: str, work: Callable[[], None]) -> None:
        """Run `work` in a thread of its own that `close` waits for (`_tails`)."""
        def run() -> None:
            try:
                work()
            finally:
                with self._cond:
                    self._tails.discard(threading.current_thread())
                    self._cond.notify_all()

        tail = threading.Thread(target=run, daemon=True, name=name)
        with self._cond:
            self._tails.add(tail)
        tail.start()

    def _acquire(self, key: str, profile: RecordedProfile, limits: SandboxLimits) -> PoolChild:
        deadline = time.monotonic() + self.settings.pool_wait_s
        with self._cond:
            self._hot[key] = (time.monotonic(), profile, limits)
        while True:
            spawn = False
            with self._cond:
                if self._ready[key]:
                    child = self._ready[key].popleft()
                    self._busy.add(id(child))
                    self._hold_waiting()
                    break
                if self._warming[key] == 0:
                    # Nothing of this problem ready or on its way (its first submission since a start, or the
                    # pool is full of other problems' children): a child warmed for another problem grades it
                    # now. It grades correctly, just less warm (the problem's first compilations are this run's),
                    # and it is ready: a fork and warm-up costs 0.3-1.2 CPU-s first. `_replenish` (below) warms
                    # one for this problem for the next submission.
                    other = self._lendable(key, fork_limits(limits))
                    if other is not None:
                        child = other.popleft()
                        self._busy.add(id(child))
                        self._hold_waiting()
                        self.stats["stolen"] += 1
                        break
                    self._warming[key] += 1
                    spawn = True
                elif time.monotonic() >= deadline:
                    raise PoolUnavailable("no warm child became ready in time")
                else:
                    self._cond.wait(min(0.5, max(0.01, deadline - time.monotonic())))
            if spawn:
                self._spawn(key, profile, limits)
        threading.Thread(target=self._replenish, daemon=True).start()
        return child

    def _replenish(self) -> None:
        """Keep `pool_prefork` ready or warming children per hot problem, the most recently graded first, within
        `pool_size` (a full pool gives up a ready child of a problem graded less recently); then one spare of each
        stocked (prepared) problem that is not hot, up to `pool_spares` spares, while the machine has memory."""
        while True:
            todo: tuple[str, RecordedProfile, SandboxLimits] | None = None
            evicted: PoolChild | None = None
            with self._cond:
                if self._closed:
                    return
                if len(self._busy) + sum(self._warming.values()) >= self._cores:
                    # Every core is taken: a fork ahead of demand would only take CPU from the gradings, and with
                    # more problems in use than children it is given up before it is used (the bank's mixed
                    # phase: 3.2-3.5 graded/s as it was, 1.1 with room for 16 children and forks on every core). A
                    # submission that finds no child forks its own (`_acquire`); ahead-forks resume when a core
                    # frees up (`_await_ready`, `_release`, `_maintain`).
                    return
                now = time.monotonic()
                hot = {key for key, (last, _, _) in self._hot.items() if now - last <= self.settings.pool_hot_s}
                spares = self._spares(hot)
                # A child forked and warmed beside a run slowed that run down: a warm grading took 37 ms instead
                # of 27 (module-basics) and 205 instead of 170 (train-step), measured side by side. So while a
                # run is in progress only a problem left without any child, ready or on its way, gets one (its
                # next submission would wait for it); topping up to `pool_prefork`, and spares, wait for the
                # moment no run is (`_release` calls this again).
                running = bool(self._busy)
                for key, (_, profile, limits) in sorted(self._hot.items(), key=lambda kv: -kv[1][0]):
                    if key not in hot:
                        continue
                    if len(self._ready[key]) + self._warming[key] >= self.settings.pool_prefork:
                        continue
                    if running and (self._ready[key] or self._warming[key]):
                        continue
                    children = self._alive_count() - spares
                    short = children >= MIN_POOL and not _memory_left_for_another_child()
                    if children >= self._max_children or short:
                        # Full: without this, the problem students are on now would never get a child of its
                        # own (each of its submissions would borrow one warmed for another and pay its own
                        # tracing, ~0.2-0.9 s), while problems graded earlier keep theirs idle.
                        evicted = self._evictable(key, hot)
                        if evicted is None:
                            break  # the rest are busy, or kept for problems graded more recently
                    self._warming[key] += 1
                    todo = (key, profile, limits)
                    break
                if todo is None and spares < self._max_spares and not running:
                    # The first offered (curriculum order) stocked problem with no child at all.
                    key = next((k for k in self._stock
                                if k not in hot and not self._ready[k] and not self._warming[k]), "")
                    if key and _memory_left_for_another_child():
                        self._warming[key] += 1
                        todo = (key, *self._stock[key])
            if evicted is not None:
                self.stats["evicted"] += 1
                self._discard(evicted)
            if todo is None:
                return
            try:
                self._spawn(*todo)
            except PoolUnavailable:
                return

    def _lendable(self, key: str, wanted: tuple[int, int, int]) -> collections.deque[PoolChild] | None:
        """The ready children to lend one from (caller holds the lock): of a problem no longer hot first, then of
        the least recently graded hot one, a spare (kept for its own problem's first submission) last."""
        now = time.monotonic()

        def rank(k: str) -> tuple[bool, bool, float]:
            last = self._hot[k][0] if k in self._hot else 0.0
            is_hot = now - last <= self.settings.pool_hot_s
            return (k in self._stock and not is_hot, is_hot, last)

        found = [k for k, q in self._ready.items() if q and k != key and q[0].fork_limits == wanted]
        return self._ready[min(found, key=rank)] if found else None

    def _evictable(self, key: str, hot: set[str]) -> PoolChild | None:
        """Take out a ready child that counts against `pool_size` and serves a problem graded less recently than
        `key` (one no longer hot first, else the least recently graded); None if there is none. Caller holds the
        lock; the caller discards the child."""
        mine = self._hot[key][0]
        candidates = [k for k, q in self._ready.items()
                      if q and k != key and not (k in self._stock and k not in hot)  # spares have their own budget
                      and (k not in hot or self._hot[k][0] < mine)]
        if not candidates:
            return None
        victim = min(candidates, key=lambda k: (k in hot, self._hot[k][0] if k in self._hot else 0.0))
        return self._ready[victim].popleft()

    def _spares(self, hot: set[str]) -> int:
        """Ready or warming children kept for stocked problems that are not hot (caller holds the lock)."""
        return sum(len(self._ready[k]) + self._warming[k] for k in self._stock if k not in hot)

    def _maintain(self) -> None:
        """Recycle old children and an old zygote; restart a dead zygote; keep hot problems stocked."""
        while True:
            time.sleep(2.0)
            if self._closed:
                return
            stale: list[PoolChild] = []
            with self._cond:
                now = time.monotonic()
                for q in self._ready.values():
                    while q and now - q[0].created > self.settings.pool_recycle_s:
                        stale.append(q.popleft())
                zygote = self._zygote
                recycle_zygote = (zygote is not None and not self._busy
                                  and now - zygote.started > self.settings.pool_zygote_recycle_s)
                hot = bool(self._stock) or any(now - last <= self.settings.pool_hot_s
                                               for last, _, _ in self._hot.values())
            for child in stale:
                self.stats["recycled"] += 1
                self._discard(child)
            try:
                if recycle_zygote and zygote is not None:
                    zygote.stop()  # _ensure_zygote starts a fresh one on the next spawn
                if hot:
                    self._replenish()
            except Exception:  # the maintainer must never die
                log.exception("pool maintenance failed")

    # ------------------------------------------------------------------ one run

    def _run(self, child: PoolChild, request: bytes, limits: SandboxLimits) -> ChildOutcome:
        outcome = ChildOutcome(sandboxed=True)
        group: cgroup.RunCgroup | None = None
        waiting, child.group = child.group, None
        try:
            wanted = _group_limits(limits)
            if waiting is not None and waiting.limits == wanted:
                group, waiting = waiting, None  # it waits in this run's group already (`_wait_in_run_group`)
                pid = _move_into(child, [])  # nothing to move: only that it is still alive
            else:
                group = _new_run_group(wanted)
                pid = _move_into(child, group.procs_files())
        except (OSError, cgroup.CgroupUnavailable, AssertionError) as exc:
            # The child died while it waited, or cgroups failed: no submitted code has run yet.
            status = exit_status(child.fds["control"], timeout=0.2) if "control" in child.fds else None
            if status is not None:
                exc = OSError(f"{exc} (the child had exited with status {status})")
            child.group = waiting  # removed once the child is gone
            self._discard(child)
            if group is not None:
                group.remove()
            with self._cond:
                self._busy.discard(id(child))
                self._resume_waiting()
            outcome.start_error = f"a warm child could not be assigned: {exc}"
            return outcome
        if waiting is not None:  # it waited in a group made for other limits, and has left it for this run's
            self._remove_later(waiting)
        child.send_signal(signal.SIGCONT)  # held while another run was in progress (`_hold_waiting`)
        restore_priority(pid)
        with self._cond:
            self._run_groups[id(child)] = group
        left_to_exit = False
        try:
            left_to_exit = watch_child(child, request, limits, group, outcome)
            if outcome.cpu_at_ready is not None:  # its group's CPU before its request: replayed while it waited
                with self._cond:
                    self._waiting_cpu = (self._waiting_cpu[0] + outcome.cpu_at_ready, self._waiting_cpu[1] + 1)
        finally:
            if left_to_exit:
                read_group(group, outcome)
                self._finish_later(child, group)
            else:
                finish_group(group, outcome)
                self._release(child)
        return outcome

    def _finish_later(self, child: PoolChild, group: cgroup.RunCgroup) -> None:
        """After a clean run, alone in its group: the outcome is complete, so the child's exit (the kernel tearing
        down a jax process, ~30 ms) and the group's removal happen here, after the grading has returned. The run
        stays counted as busy until then, so no more children run at once than `pool_size` allows."""
        def finish() -> None:
            try:
                # Its own exit, within the moment `supervise` gives any finished child; `remove` kills it if it has
                # not (a submission that forged `done` and closed its pipes gets no longer than before).
                exit_status(child.fds["control"], timeout=0.5)
                group.remove()
            except Exception:  # logged, and the child is released all the same; a leftover group keeps its name
                log.exception("removing the cgroup of a finished run failed")
            finally:
                self._release(child)

        self._in_background("gradax-run-tail", finish)

    def _release(self, child: PoolChild) -> None:
        child.close()
        with self._cond:
            self._run_groups.pop(id(child), None)
            self._busy.discard(id(child))
            self._resume_waiting()
        threading.Thread(target=self._replenish, daemon=True).start()  # a core is free: forks ahead may resume
