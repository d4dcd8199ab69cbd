"""Defaults that depend on each other, or on the machine, in the server's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from app.grading import capacity
from graders import machine


def test_grading_threads_follow_the_machine() -> None:
    machine = capacity.measure(1024)
    assert Settings(pool="warm").grading_workers == Settings(pool="cold").grading_workers == machine.slots
    assert machine.slots == min(machine.cores, capacity.slots_for(10**6, machine.memory_mb, 1024)) >= 1
    assert Settings(pool="warm", grading_workers=0).grading_workers == 0  # external workers only
    assert Settings(pool="cold", grading_workers=3).grading_workers == 3  # the override wins


def test_slots_are_cores_bounded_by_memory() -> None:
    assert capacity.slots_for(2, 24_000, 1024) == 2
    assert capacity.slots_for(16, 4096, 1024) == 3  # (4096 - 1024 reserved) // 1024
    assert capacity.slots_for(16, 512, 1024) == 1  # never none
    assert capacity.slots_for(8, None, 1024) == 8  # memory unknown: the cores decide


def test_cgroup_quota_and_memory_limit_bind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A container's `--cpus 1.5 --memory 3g` (cgroup v2, seen from inside its namespace) gives 2 cores, 2 slots."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    (tmp_path / "memory.max").write_text(f"{3 * 2**30}\n")
    monkeypatch.setattr(machine, "CGROUP_ROOT", tmp_path)  # the cgroup reader capacity shares with the engine
    monkeypatch.setattr(machine, "_own_cgroups", lambda: {"": "/"})
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: set(range(8)))
    assert capacity.available_cores() == 2
    assert capacity.available_memory_mb() == 3072
    assert capacity.measure(1024).slots == 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert capacity.available_cores() == 8
