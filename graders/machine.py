"""What the machine has, as far as the warm pool's spare children are concerned: memory in all, and memory free.

The app sizes its grading slots with more care (app/grading/capacity.py walks every cgroup up to the root and
reads CPU quotas); the engine cannot import the app, and its spares need only an order of magnitude: the machine's
memory, or the limit of this process's own cgroup where that is lower (a container).
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _meminfo(field: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_limit_mb() -> int | None:
    """The memory limit of this process's own cgroup (v2 memory.max or v1 memory.limit_in_bytes), if any."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = [*line.split(":", 2), "", ""][:3]
        if controllers == "" and hierarchy == "0":
            candidate = CGROUP_ROOT / path.lstrip("/") / "memory.max"
        elif "memory" in controllers.split(","):
            candidate = CGROUP_ROOT / "memory" / path.lstrip("/") / "memory.limit_in_bytes"
        else:
            continue
        try:
            text = candidate.read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 says "no limit" with a huge number, v2 with "max"
            return int(text) // 2**20
    return None


def memory_mb() -> int | None:
    """The machine's memory, or this process's cgroup limit where lower; None when neither can be read."""
    total, limit = _meminfo("MemTotal"), _cgroup_limit_mb()
    if limit is not None and (total is None or limit < total):
        return limit
    return total


def memory_available_mb() -> int | None:
    """Memory the kernel could give now without swapping (MemAvailable); None when unknown."""
    return _meminfo("MemAvailable")
