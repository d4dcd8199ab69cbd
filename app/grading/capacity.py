"""How many gradings this machine can serve at once: its cores and its memory, as the server's process sees them.

A grading child is CPU-bound for its whole run, so running more children than there are cores only makes every
one of them slower (and a busy machine's students wait in the dark). The server grades at most this many at
once and the rest wait, queued, where the page can say how many are ahead and for about how long.

Cores: the CPUs this process may run on (its affinity), lowered by a CPU quota on its cgroup (a container's
`--cpus`). Memory: the cgroup's memory limit when it has one, else the machine's total, less a reserve for the
server and the warm pool's zygote; each grading is given `slot_memory_mb` of it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The server process, its database connections and the warm pool's zygote (jax imported once): what stays
# in memory whatever is being graded.
RESERVE_MB = 1024


@dataclass(frozen=True)
class Capacity:
    cores: int
    memory_mb: int | None  # None: unknown (no /proc/meminfo, no cgroup limit)
    slots: int  # gradings at once

    def describe(self) -> str:
        memory = f"{self.memory_mb} MiB" if self.memory_mb is not None else "unknown memory"
        return f"{self.slots} at once ({self.cores} cores, {memory})"


def measure(slot_memory_mb: int) -> Capacity:
    """This machine's capacity for gradings of `slot_memory_mb` each."""
    cores = available_cores()
    memory = available_memory_mb()
    return Capacity(cores, memory, slots_for(cores, memory, slot_memory_mb))


def slots_for(cores: int, memory_mb: int | None, slot_memory_mb: int) -> int:
    """One grading per core, fewer where memory cannot hold that many; never fewer than one."""
    slots = max(1, cores)
    if memory_mb is not None and slot_memory_mb > 0:
        slots = min(slots, max(1, (memory_mb - RESERVE_MB) // slot_memory_mb))
    return slots


def available_cores() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def available_memory_mb() -> int | None:
    total = _meminfo_total_mb()
    limit = _memory_limit_mb()
    if limit is not None and (total is None or limit < total):
        return limit
    return total


def _own_cgroups() -> dict[str, str]:
    """Controller name (or "" for the v2 unified hierarchy) -> this process's cgroup path in it."""
    found: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            found[controller] = parts[2]
    return found


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_files(v2_name: str, v1_controller: str, v1_name: str) -> list[tuple[str, Path]]:
    """The limit files that apply to this process, from its own cgroup up to the root (a parent's limit binds
    too), v2 first."""
    groups = _own_cgroups()
    files: list[tuple[str, Path]] = []
    unified = CGROUP_ROOT if (CGROUP_ROOT / "cgroup.controllers").exists() else CGROUP_ROOT / "unified"  # hybrid
    for version, controller, name, base in (("v2", "", v2_name, unified),
                                            ("v1", v1_controller, v1_name, CGROUP_ROOT / v1_controller)):
        relative = groups.get(controller)
        if relative is None:
            continue
        path = Path(relative.lstrip("/"))
        while True:
            files.append((version, base / path / name))
            if path == Path("."):
                break
            path = path.parent
    return files


def _cpu_quota() -> float | None:
    """CPUs' worth of time the cgroups allow (cpu.max or cfs quota/period), the tightest; None: no quota."""
    quotas: list[float] = []
    for version, path in _cgroup_files("cpu.max", "cpu", "cpu.cfs_quota_us"):
        text = _read(path)
        if not text:
            continue
        if version == "v2":
            fields = text.split()
            if len(fields) == 2 and fields[0] != "max":
                quotas.append(int(fields[0]) / int(fields[1]))
        else:
            period = _read(path.with_name("cpu.cfs_period_us"))
            if text.lstrip("-").isdigit() and int(text) > 0 and period and period.isdigit():
                quotas.append(int(text) / int(period))
    return min(quotas) if quotas else None


def _memory_limit_mb() -> int | None:
    limits: list[int] = []
    for _version, path in _cgroup_files("memory.max", "memory", "memory.limit_in_bytes"):
        text = _read(path)
        if text and text.isdigit() and int(text) < 2**60:  # v1 says "no limit" with a huge number
            limits.append(int(text) // 2**20)
    return min(limits) if limits else None


def _meminfo_total_mb() -> int | None:
    text = _read(Path("/proc/meminfo"))
    for line in (text or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None
