"""Per-run control groups (cgroup v1): memory and process limits, CPU accounting, reliable kill.

Every process a submission starts lands in the run's groups, so a double-forked `setsid` daemon is
still counted, limited and killed. The host only writes to files under /sys/fs/cgroup that it created.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpuacct", "freezer")
PARENT = "gradax"


class CgroupUnavailable(Exception):
    """The cgroup v1 controllers the sandbox needs are not mounted or not writable."""


def available() -> str | None:
    """None when cgroups can be used, else the reason why not."""
    for ctrl in CONTROLLERS:
        base = CGROUP_ROOT / ctrl
        if not (base / "cgroup.procs").exists():
            return f"cgroup v1 controller {ctrl!r} is not mounted at {base}"
        if not os.access(base, os.W_OK):
            return f"no write access to {base} (run as root)"
    return None


class RunCgroup:
    """One set of control groups for one sandboxed run."""

    def __init__(self, memory_bytes: int, pids: int, name: str | None = None):
        reason = available()
        if reason:
            raise CgroupUnavailable(reason)
        self.name = name or f"run-{uuid.uuid4().hex[:16]}"
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
        """The files a new process writes its pid to, to join every controller."""
        return [str(p / "cgroup.procs") for p in self.paths.values()]

    def pids(self) -> list[int]:
        text = (self.paths["pids"] / "cgroup.procs").read_text()
        return [int(x) for x in text.split()]

    def cpu_seconds(self) -> float:
        return int((self.paths["cpuacct"] / "cpuacct.usage").read_text()) / 1e9

    def memory_peak(self) -> int:
        return int((self.paths["memory"] / "memory.max_usage_in_bytes").read_text())

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this run for exceeding the memory limit."""
        for line in (self.paths["memory"] / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return False

    def memory_limit_hit(self) -> bool:
        return self.memory_limit_reached() and self.oom_killed()

    def memory_limit_reached(self) -> bool:
        """Whether usage ever reached the limit. Near the limit the kernel may keep reclaiming (library
        pages, page cache) for seconds instead of killing, so a run stopped by time can be starved of
        memory rather than slow; the engine reports that as memory_limit_exceeded."""
        mem = self.paths["memory"]
        if int((mem / "memory.failcnt").read_text()) > 0:
            return True
        # Some kernels (6.18 here) leave failcnt at 0 even after an OOM kill; the peak touching the
        # (page-rounded) limit says the same thing.
        limit = int((mem / "memory.limit_in_bytes").read_text())
        return int((mem / "memory.max_usage_in_bytes").read_text()) >= limit

    def kill_all(self, timeout: float = 5.0) -> None:
        """Freeze the group so nothing can fork, SIGKILL every member, thaw, wait until empty."""
        freezer = self.paths["freezer"] / "freezer.state"
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return
            try:
                freezer.write_text("FROZEN")
            except OSError:
                pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                freezer.write_text("THAWED")
            except OSError:
                pass
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths.values():
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
