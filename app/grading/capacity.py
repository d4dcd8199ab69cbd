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
from dataclasses import dataclass

from graders.machine import affinity_cores, cgroup_files, read
from graders.machine import memory_mb as available_memory_mb

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
    cores = affinity_cores()
    quota = _cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def _cpu_quota() -> float | None:
    """CPUs' worth of time the cgroups allow (cpu.max or cfs quota/period), the tightest; None: no quota."""
    quotas: list[float] = []
    for version, path in cgroup_files("cpu.max", "cpu", "cpu.cfs_quota_us"):
        text = read(path)
        if not text:
            continue
        if version == "v2":
            fields = text.split()
            if len(fields) == 2 and fields[0] != "max":
                quotas.append(int(fields[0]) / int(fields[1]))
        else:
            period = read(path.with_name("cpu.cfs_period_us"))
            if text.lstrip("-").isdigit() and int(text) > 0 and period and period.isdigit():
                quotas.append(int(text) / int(period))
    return min(quotas) if quotas else None
