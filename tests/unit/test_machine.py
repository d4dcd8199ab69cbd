"""The engine's view of the machine's memory, which sizes the warm pool (its children for problems in use, and its
spares): a container's cgroup limit wins over the host's memory, and the default sizes follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders import machine
from graders.settings import MAX_POOL, MAX_SPARES, MIN_POOL, POOL_CHILD_MB, SPARE_MB, GraderSettings


def test_a_cgroup_limit_below_the_machines_memory_sizes_the_spares(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    host = machine.memory_mb()
    assert host is not None and host > 4096, "this test needs a machine with more than 4 GB"
    # A fake cgroupfs (v2 at its root, v1 memory below it) with a 4 GB limit where this process's groups would be.
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    for controller, path in machine._own_cgroups().items():
        if controller == "":
            (tmp_path / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            (tmp_path / path.lstrip("/") / "memory.max").write_text(str(4 * 2**30))
        elif controller == "memory":
            (tmp_path / "memory" / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            (tmp_path / "memory" / path.lstrip("/") / "memory.limit_in_bytes").write_text(str(4 * 2**30))
    monkeypatch.setattr(machine, "CGROUP_ROOT", tmp_path)
    assert machine.memory_mb() == 4096
    assert GraderSettings(pool_spares=-1).spare_children() == 4096 // 4 // SPARE_MB == 5
    assert GraderSettings(pool_spares=3).spare_children() == 3  # an explicit number wins
    # 4096 // 8 // 150 = 3: a small machine keeps the floor of 4 children for problems in use.
    assert GraderSettings(pool_size=-1).pool_children() == MIN_POOL == 4
    assert GraderSettings(pool_size=2).pool_children() == 2


def test_without_a_limit_the_machines_memory_counts_and_the_spares_are_capped(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "CGROUP_ROOT", tmp_path)  # no limit files at all
    total = machine.memory_mb()
    assert total is not None and total == int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    assert GraderSettings(pool_spares=-1).spare_children() == min(MAX_SPARES, total // 4 // SPARE_MB)
    assert GraderSettings(pool_size=-1).pool_children() == max(MIN_POOL, min(MAX_POOL, total // 8 // POOL_CHILD_MB))
    available = machine.memory_available_mb()
    assert available is not None and 0 < available <= total
