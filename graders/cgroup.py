"""Per-run control groups: memory and process limits, CPU accounting, reliable kill.

Every process a submission starts lands in the run's group(s), so a double-forked `setsid` daemon is
still counted, limited and killed. The host only writes to files under /sys/fs/cgroup that it created,
plus, on cgroup v2, `cgroup.subtree_control` of its own cgroup and of the delegated ancestors that have
to pass the memory and pids controllers down, and (once) its own pid to move itself into a leaf group
(see `_v2_parent`).

Two backends behind one interface; `RunCgroup(...)` picks one:
- cgroup v1 (`RunCgroupV1`) when the controllers memory, pids, cpuacct and freezer are mounted under
  /sys/fs/cgroup and writable: one group per controller, /sys/fs/cgroup/<controller>/gradax/<run>.
- otherwise cgroup v2 (`RunCgroupV2`) when /sys/fs/cgroup is the unified hierarchy (it has
  `cgroup.controllers`): one group `<parent>/<run>`, where the parent is `$GRADAX_CGROUP_PARENT` or
  `<this process's cgroup>/gradax`.
Anything else fails closed: `available()` says why and `RunCgroup` raises `CgroupUnavailable`.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from graders.settings import GraderSettings

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
CONTROLLERS = ("memory", "pids", "cpuacct", "freezer")  # cgroup v1
PARENT = "gradax"
# cgroup v2: memory and pids are required; cpu is enabled when available (cpu.stat usage_usec exists
# without it, so CPU accounting does not depend on it).
V2_REQUIRED = ("memory", "pids")
V2_OPTIONAL = ("cpu",)
V2_HOST_LEAF = "gradax-host"
PARENT_ENV = "GRADAX_CGROUP_PARENT"  # GraderSettings.cgroup_parent
_V2_NEEDS = ("the sandbox needs a delegated, writable cgroup v2 subtree: e.g. a container with "
             "--cgroupns=private and a writable /sys/fs/cgroup, or --privileged, or a systemd unit with Delegate=yes")


class CgroupUnavailable(Exception):
    """Neither the cgroup v1 controllers nor a usable cgroup v2 subtree: the sandbox cannot start."""


class _Fs:
    """The few file operations on cgroupfs, in one place so tests can stand in a fake kernel."""

    def read(self, path: Path) -> str:
        return path.read_text()

    def write(self, path: Path, text: str) -> None:
        # Never O_CREAT: a missing interface file is an error, not something to create.
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def rmdir(self, path: Path) -> None:
        path.rmdir()


_fs = _Fs()
_v2_lock = threading.Lock()


def available() -> str | None:
    """None when cgroups can be used, else the reason why not.

    On cgroup v2 only trying tells, so this also prepares the parent group (idempotent; see `_v2_parent`).
    """
    if _v1_unavailable() is None:
        return None
    try:
        _v2_parent()
    except CgroupUnavailable as exc:
        return str(exc)
    return None


# A process killed outright (SIGKILL, the OOM killer, a power cut) leaves its groups behind, empty; a group older than
# this that holds no process is left over (`remove_leftovers`).
LEFTOVER_AGE_S = 3600.0
_PREFIXES = ("run-", "pool-")


def remove_leftovers(older_than_s: float = LEFTOVER_AGE_S) -> int:
    """Remove the empty run and pool groups made more than `older_than_s` ago: what gradax processes that were killed
    outright left behind (every clean path removes its own). Empty, each still costs the kernel its structures (on
    cgroup v1 a removed memory group's stay until its last page goes, an unremoved one's for good), and a server
    restarted after crashes all semester would pile up thousands. A group in use is never empty that long: a run's
    holds its child from the moment it is ready, a pool's its zygote; another process's group made a moment ago and
    not joined yet is younger than the limit. Returns how many were removed; best effort (an error skips one)."""
    if _v1_unavailable() is None:
        parents = [CGROUP_ROOT / c / PARENT for c in CONTROLLERS]
    else:
        try:
            parents = [_v2_parent()]
        except CgroupUnavailable:
            return 0
    removed = 0
    cutoff = time.time() - older_than_s
    for parent in parents:
        try:
            groups = [p for p in parent.iterdir() if p.is_dir() and p.name.startswith(_PREFIXES)]
        except OSError:
            continue
        for group in groups:
            try:
                if group.stat().st_mtime > cutoff or _fs.read(group / "cgroup.procs").split():
                    continue
                _fs.rmdir(group)
                removed += 1
            except OSError:
                continue
    return removed


def join_self(procs_files: list[str]) -> None:
    """Move the calling process into a run's groups: called in a forked child before `exec` (preexec), so the
    program and every descendant are limited and accounted from their first instruction."""
    pid = str(os.getpid()).encode()
    for path in procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, pid)
        finally:
            os.close(fd)


def _v1_unavailable() -> str | None:
    for ctrl in CONTROLLERS:
        base = CGROUP_ROOT / ctrl
        if not (base / "cgroup.procs").exists():
            return f"cgroup v1 controller {ctrl!r} is not mounted at {base}"
        if not os.access(base, os.W_OK):
            return f"no write access to {base} (run as root)"
    return None


def freeze_and_kill(*, freeze: Callable[[], object], frozen: Callable[[], bool], thaw: Callable[[], object],
                    pids: Callable[[], list[int]], deadline: float) -> None:
    """Freeze a group, SIGKILL every member, thaw: one round of a kill without `cgroup.kill`.

    Freezing is asynchronous, so the members are read only once all are frozen: none can fork unseen, and no
    pid read can exit and be reused by an unrelated process before the kill (a frozen task still dies of
    SIGKILL). Bounded: a task stuck in the kernel may never freeze; its pid is then read while it is still
    alive. Every step is best effort (OSError): the caller repeats rounds until the group is empty.
    """
    try:
        freeze()
    except OSError:
        pass
    until = min(deadline, time.monotonic() + 0.5)
    while time.monotonic() < until:
        try:
            if frozen():
                break
        except OSError:
            break
        time.sleep(0.001)
    for pid in pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        thaw()
    except OSError:
        pass


class RunCgroup:
    """The control group(s) of one sandboxed run. `RunCgroup(...)` returns the backend this host supports."""

    name: str

    def __new__(cls, memory_bytes: int, pids: int, name: str | None = None) -> RunCgroup:
        backend: type[RunCgroup] = cls
        if not issubclass(cls, (RunCgroupV1, RunCgroupV2)):  # asked for RunCgroup itself: choose
            reason = available()
            if reason:
                raise CgroupUnavailable(reason)
            backend = RunCgroupV1 if _v1_unavailable() is None else RunCgroupV2
        return super().__new__(backend)

    # The limits it was made with: a warm child that waits in a group made for one problem's limits is run in it
    # only by a submission with the same limits (graders/pool.py).
    limits: tuple[int, int]

    def procs_files(self) -> list[str]:
        """The files a new process writes its pid to, to join the run."""
        raise NotImplementedError

    def directories(self) -> list[Path]:
        """The group directories of this run (removed by `remove`)."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        raise NotImplementedError

    def cpu_seconds(self) -> float:
        raise NotImplementedError

    def memory_current(self) -> int:
        """Memory charged to the run now, in bytes."""
        raise NotImplementedError

    def memory_peak(self) -> int:
        raise NotImplementedError

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this run for exceeding the memory limit."""
        raise NotImplementedError

    def memory_limit_reached(self) -> bool:
        """Whether usage ever reached the limit. Near the limit the kernel may keep reclaiming (library
        pages, page cache) for seconds instead of killing, so a run stopped by time can be starved of
        memory rather than slow; the engine reports that as memory_limit_exceeded."""
        raise NotImplementedError

    def move_charges_on_join(self) -> None:
        """Charge memory a process already has to this run when it joins (the warm pool's children)."""
        raise NotImplementedError

    def kill_all(self, timeout: float = 5.0) -> None:
        """SIGKILL every member so none can escape by forking, and wait until the group is empty."""
        raise NotImplementedError

    def memory_limit_hit(self) -> bool:
        return self.memory_limit_reached() and self.oom_killed()

    def remove(self) -> None:
        self.kill_all()
        for path in self.directories():
            for _ in range(50):
                try:
                    _fs.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)


class RunCgroupV1(RunCgroup):
    """cgroup v1: one group per controller (memory, pids, cpuacct, freezer) for one run."""

    def __init__(self, memory_bytes: int, pids: int, name: str | None = None):
        self.name = name or f"run-{uuid.uuid4().hex[:16]}"
        self.limits = (memory_bytes, pids)
        self.paths = {c: CGROUP_ROOT / c / PARENT / self.name for c in CONTROLLERS}
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)
        mem = self.paths["memory"]
        (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
        # Without swap accounting the file is absent; with it, swap must not extend the limit.
        memsw = mem / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(memory_bytes))
        (self.paths["pids"] / "pids.max").write_text(str(pids))

    def procs_files(self) -> list[str]:
        return [str(p / "cgroup.procs") for p in self.paths.values()]

    def directories(self) -> list[Path]:
        return list(self.paths.values())

    def pids(self) -> list[int]:
        text = (self.paths["pids"] / "cgroup.procs").read_text()
        return [int(x) for x in text.split()]

    def cpu_seconds(self) -> float:
        return int((self.paths["cpuacct"] / "cpuacct.usage").read_text()) / 1e9

    def memory_current(self) -> int:
        return int((self.paths["memory"] / "memory.usage_in_bytes").read_text())

    def memory_peak(self) -> int:
        return int((self.paths["memory"] / "memory.max_usage_in_bytes").read_text())

    def oom_killed(self) -> bool:
        for line in (self.paths["memory"] / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return False

    def memory_limit_reached(self) -> bool:
        mem = self.paths["memory"]
        if int((mem / "memory.failcnt").read_text()) > 0:
            return True
        # Some kernels (6.18 here) leave failcnt at 0 even after an OOM kill; the peak touching the
        # (page-rounded) limit says the same thing.
        limit = int((mem / "memory.limit_in_bytes").read_text())
        return int((mem / "memory.max_usage_in_bytes").read_text()) >= limit

    def move_charges_on_join(self) -> None:
        # 3 = anonymous and file pages: a warm child's pre-warmed memory counts against the run's limit,
        # as it would in a cold run. Best effort: kernels that dropped the feature refuse the write.
        try:
            (self.paths["memory"] / "memory.move_charge_at_immigrate").write_text("3")
        except OSError:
            pass

    def kill_all(self, timeout: float = 5.0) -> None:
        """Freeze the group so nothing can fork or exit, SIGKILL every member, thaw, wait until empty.

        The members are read only once the group is frozen: a pid read from a running group may exit and be
        reused by an unrelated process before the kill (pid_max is 32768 here, and a fork bomb cycles pids
        fast), which killed other submissions' ready warm children in CI.
        """
        freezer = self.paths["freezer"] / "freezer.state"
        deadline = time.monotonic() + timeout
        while True:
            if not self.pids():
                return
            freeze_and_kill(
                freeze=lambda: freezer.write_text("FROZEN"),
                frozen=lambda: freezer.read_text().strip() == "FROZEN",  # FREEZING until every task stopped
                thaw=lambda: freezer.write_text("THAWED"),
                pids=self.pids,
                deadline=deadline,
            )
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)


class RunCgroupV2(RunCgroup):
    """cgroup v2 (unified hierarchy): one group `<parent>/<name>` for one run.

    Without `memory.peak` (kernels before 5.19) the peak is the largest `memory.current` seen when
    `cpu_seconds` or `memory_peak` ran (the watchers poll CPU every ~50 ms), so a short spike between
    polls is missed; limit verdicts never depend on it (`memory.events` counts every limit hit).
    """

    def __init__(self, memory_bytes: int, pids: int, name: str | None = None):
        self.name = name or f"run-{uuid.uuid4().hex[:16]}"
        self.path = _v2_parent() / self.name
        self.limits = (memory_bytes, pids)
        self._peak_seen = 0
        _fs.mkdir(self.path)
        self._has_peak = (self.path / "memory.peak").exists()
        try:
            _fs.write(self.path / "memory.max", str(memory_bytes))
            # v2 accounts swap separately from memory.max: allow none, as v1's memsw = limit does.
            if (self.path / "memory.swap.max").exists():
                _fs.write(self.path / "memory.swap.max", "0")
            # An OOM kill takes the whole run at once rather than one victim: the run is over either way,
            # and no half-killed process tree keeps running until the watcher notices.
            if (self.path / "memory.oom.group").exists():
                _fs.write(self.path / "memory.oom.group", "1")
            _fs.write(self.path / "pids.max", str(pids))
        except OSError:
            self._rmdir_quietly()
            raise

    def _rmdir_quietly(self) -> None:
        try:
            _fs.rmdir(self.path)
        except OSError:
            pass

    def procs_files(self) -> list[str]:
        return [str(self.path / "cgroup.procs")]

    def directories(self) -> list[Path]:
        return [self.path]

    def pids(self) -> list[int]:
        return [int(x) for x in _fs.read(self.path / "cgroup.procs").split()]

    def cpu_seconds(self) -> float:
        usage = _keyed(_fs.read(self.path / "cpu.stat"))["usage_usec"] / 1e6
        if not self._has_peak:
            self._sample_memory()
        return usage

    def _sample_memory(self) -> None:
        try:
            self._peak_seen = max(self._peak_seen, self.memory_current())
        except OSError:
            pass

    def memory_current(self) -> int:
        return int(_fs.read(self.path / "memory.current"))

    def memory_peak(self) -> int:
        if self._has_peak:
            return int(_fs.read(self.path / "memory.peak"))
        self._sample_memory()
        return self._peak_seen

    def oom_killed(self) -> bool:
        # memory.events is hierarchical, so it covers memory.events.local; a run has no child groups anyway.
        return _keyed(_fs.read(self.path / "memory.events")).get("oom_kill", 0) > 0

    def memory_limit_reached(self) -> bool:
        # `max`: usage was about to go over memory.max (v1's failcnt); `oom`/`oom_kill` imply it.
        events = _keyed(_fs.read(self.path / "memory.events"))
        return any(events.get(key, 0) > 0 for key in ("max", "oom", "oom_kill"))

    def move_charges_on_join(self) -> None:
        # cgroup v2 has no charge moving: pages stay charged to the group that faulted them in. A warm
        # child's pre-warmed memory therefore stays on the zygote's pool group, and the run's memory.max
        # counts only what the child allocates after joining (a cold run counts its imports too).
        return None

    def kill_all(self, timeout: float = 5.0) -> None:
        """cgroup.kill (kernel >= 5.14) kills the whole group atomically, forks included; older kernels:
        freeze, SIGKILL every member, thaw. Either way repeat until cgroup.procs is empty."""
        deadline = time.monotonic() + timeout
        kill_file, freeze_file = self.path / "cgroup.kill", self.path / "cgroup.freeze"
        while True:
            if not self.pids():
                return
            if kill_file.exists():
                try:
                    _fs.write(kill_file, "1")
                except OSError:
                    pass
            else:
                freeze_and_kill(
                    freeze=lambda: _fs.write(freeze_file, "1"),
                    frozen=lambda: _keyed(_fs.read(self.path / "cgroup.events")).get("frozen") == 1,
                    thaw=lambda: _fs.write(freeze_file, "0"),
                    pids=self.pids,
                    deadline=deadline,
                )
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)


def _keyed(text: str) -> dict[str, int]:
    """`key value` lines (cpu.stat, memory.events, cgroup.events) as a dict."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


# ---------------------------------------------------------------------------------------- cgroup v2 set-up


def _v2_parent() -> Path:
    """The cgroup v2 group that holds the runs, with memory and pids (and cpu) enabled for its children.

    `$GRADAX_CGROUP_PARENT` (a path in the hierarchy, as in /proc/self/cgroup) or `<own cgroup>/gradax`.
    cgroup v2's "no internal processes" rule: a non-root cgroup with processes cannot enable controllers
    for its children. So when enabling them in our own cgroup fails with EBUSY, this process moves to the
    leaf `<own cgroup>/gradax-host` and retries (what container runtimes do); its later children start
    there too. If other processes share the cgroup it still fails, and the reason says so.
    Idempotent: once set up it only reads. Raises CgroupUnavailable with the reason.
    """
    with _v2_lock:
        if not (CGROUP_ROOT / "cgroup.controllers").exists():
            raise CgroupUnavailable(
                f"{_v1_unavailable()}; and no cgroup v2 unified hierarchy at {CGROUP_ROOT} (no cgroup.controllers)")
        root_controllers = _controllers(CGROUP_ROOT)
        missing = [c for c in V2_REQUIRED if c not in root_controllers]
        if missing:
            raise CgroupUnavailable(
                f"cgroup v2: controller(s) {', '.join(missing)} not available at {CGROUP_ROOT} "
                f"(cgroup.controllers: {' '.join(sorted(root_controllers)) or 'empty'})")
        own = _own_cgroup()
        home = own.parent if own.name == V2_HOST_LEAF else own  # moved there earlier (see _enable)
        # Read when a run's group is made, like the rest of the host's cgroup state (tests change it per test).
        configured = GraderSettings().cgroup_parent.strip()
        parent = _in_hierarchy(configured, PARENT_ENV) if configured else home / PARENT
        try:
            _fs.mkdir(parent)
        except OSError as exc:
            raise CgroupUnavailable(f"cgroup v2: cannot create {parent}: {exc.strerror or exc}; {_V2_NEEDS}") from exc
        wanted = [c for c in V2_REQUIRED + V2_OPTIONAL if c in root_controllers]
        _enable_down_to(parent, wanted, home)
        return parent


def _own_cgroup() -> Path:
    """This process's cgroup v2 directory, checked to be the one /sys/fs/cgroup shows."""
    try:
        text = _fs.read(PROC_SELF_CGROUP)
    except OSError as exc:
        raise CgroupUnavailable(f"cgroup v2: cannot read {PROC_SELF_CGROUP}: {exc}") from exc
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            own = _in_hierarchy(relative, str(PROC_SELF_CGROUP))
            break
    else:
        raise CgroupUnavailable(f"cgroup v2: {PROC_SELF_CGROUP} has no unified-hierarchy line (0::/path)")
    # E.g. the host's /sys/fs/cgroup bind-mounted into a container with a private cgroup namespace:
    # /proc/self/cgroup is then relative to another root, and every path built from it would be wrong.
    try:
        members = _fs.read(own / "cgroup.procs").split()
    except OSError as exc:
        raise CgroupUnavailable(f"cgroup v2: cannot read {own / 'cgroup.procs'}: {exc.strerror or exc}") from exc
    if str(os.getpid()) not in members:
        raise CgroupUnavailable(
            f"cgroup v2: this process is not in {own}/cgroup.procs although {PROC_SELF_CGROUP} says so: "
            f"{CGROUP_ROOT} is not this process's cgroup hierarchy (was the host's /sys/fs/cgroup mounted "
            "into a container that has its own cgroup namespace?)")
    return own


def _in_hierarchy(relative: str, source: str) -> Path:
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CgroupUnavailable(f"cgroup v2: {relative!r} (from {source}) is outside the hierarchy at {CGROUP_ROOT}")
    return CGROUP_ROOT.joinpath(*parts)


def _controllers(group: Path, name: str = "cgroup.controllers") -> set[str]:
    return set(_fs.read(group / name).split())


def _enable_down_to(parent: Path, wanted: list[str], home: Path) -> None:
    """Enable `wanted` in cgroup.subtree_control from the deepest ancestor of `parent` that has the
    required controllers down to `parent` itself. Higher groups (usually systemd's or the container
    runtime's) are never written."""
    chain = [parent]  # parent, its parent, ..., CGROUP_ROOT
    while chain[-1] != CGROUP_ROOT:
        chain.append(chain[-1].parent)
    start = next((i for i, group in enumerate(chain) if set(V2_REQUIRED) <= _controllers(group)), len(chain) - 1)
    for group in reversed(chain[: start + 1]):
        offered = _controllers(group)
        enabled = _controllers(group, "cgroup.subtree_control")
        for ctrl in wanted:
            if ctrl in enabled or ctrl not in offered:
                continue
            try:
                _enable(group, ctrl, home)
            except CgroupUnavailable:
                if ctrl in V2_REQUIRED:
                    raise  # cpu is optional: cpu.stat usage_usec is there without it


def _enable(group: Path, ctrl: str, home: Path) -> None:
    control = group / "cgroup.subtree_control"
    try:
        _fs.write(control, f"+{ctrl}")
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY or group != home:
            raise CgroupUnavailable(
                f"cgroup v2: cannot enable {ctrl} in {control}: {exc.strerror or exc}; {_V2_NEEDS}") from exc
    _move_self(home / V2_HOST_LEAF)
    # Right after a move the kernel can still answer EBUSY for a moment (crun retries too).
    for _ in range(20):
        try:
            _fs.write(control, f"+{ctrl}")
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise CgroupUnavailable(f"cgroup v2: cannot enable {ctrl} in {control}: {exc.strerror or exc}") from exc
        time.sleep(0.01)
    try:
        others = len(_fs.read(group / "cgroup.procs").split())
    except OSError:
        others = -1
    raise CgroupUnavailable(
        f"cgroup v2: cannot enable {ctrl} for the children of {group}: it still has {others} other process(es) "
        f"after this one moved to {V2_HOST_LEAF}, and cgroup v2 lets a group with processes give no controllers "
        f"to child groups. Run gradax alone in its cgroup (as a container's main process, or with "
        f"`systemd-run --scope -p Delegate=yes`), or set {PARENT_ENV} to a delegated cgroup without processes")


def _move_self(leaf: Path) -> None:
    try:
        _fs.mkdir(leaf)
        _fs.write(leaf / "cgroup.procs", str(os.getpid()))
    except OSError as exc:
        raise CgroupUnavailable(f"cgroup v2: cannot move this process to {leaf}: {exc.strerror or exc}") from exc
