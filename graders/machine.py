"""What the machine gives this process: the cores it may run on, its memory in all (a cgroup limit where lower), the
memory free now, and the cgroup interface files that apply to it. Shared by the engine (the warm pool, preparation)
and the app, which sizes its grading slots from the same figures (app/grading/capacity.py; the engine cannot import
the app).
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


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


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_files(v2_name: str, v1_controller: str, v1_name: str) -> list[tuple[str, Path]]:
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


def _memory_limit_mb() -> int | None:
    limits: list[int] = []
    for _version, path in cgroup_files("memory.max", "memory", "memory.limit_in_bytes"):
        text = read(path)
        if text and text.isdigit() and int(text) < 2**60:  # v1 says "no limit" with a huge number
            limits.append(int(text) // 2**20)
    return min(limits) if limits else None


def _meminfo_mb(field: str) -> int | None:
    for line in (read(Path("/proc/meminfo")) or "").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return None


def affinity_cores() -> int:
    """The cores this process may run on (its CPU affinity; all of them where that cannot be read), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores)


def memory_mb() -> int | None:
    """The machine's memory, or the tightest cgroup limit over this process where lower; None when unknown."""
    total = _meminfo_mb("MemTotal")
    limit = _memory_limit_mb()
    if limit is not None and (total is None or limit < total):
        return limit
    return total


def memory_available_mb() -> int | None:
    """Memory the kernel could give now without swapping (MemAvailable); None when unknown."""
    return _meminfo_mb("MemAvailable")
