"""Leftover groups of processes killed outright are removed at the pool's start; nothing in use is (real cgroup v1)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graders import cgroup

pytestmark = pytest.mark.skipif(cgroup._v1_unavailable() is not None,
                                reason=f"needs the cgroup v1 controllers, as root: {cgroup._v1_unavailable()}")


def _make(name: str, age_s: float) -> list[Path]:
    """A group `name` in every controller, made `age_s` ago (its directory's mtime, as the kernel keeps it)."""
    paths = [cgroup.CGROUP_ROOT / c / cgroup.PARENT / name for c in cgroup.CONTROLLERS]
    for path in paths:
        path.mkdir(parents=True)
        then = time.time() - age_s
        os.utime(path, (then, then))
    return paths


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    made = {"old_run": f"run-leftover-{tag}", "old_pool": f"pool-leftover-{tag}", "young": f"run-young-{tag}",
            "busy": f"run-busy-{tag}", "other": f"gradax-other-{tag}"}
    yield made
    for name in made.values():
        for c in cgroup.CONTROLLERS:
            path = cgroup.CGROUP_ROOT / c / cgroup.PARENT / name
            if path.exists():
                path.rmdir()


def test_old_empty_groups_go_and_the_rest_stay(names: dict[str, str]) -> None:
    old = _make(names["old_run"], 7200) + _make(names["old_pool"], 7200)
    young = _make(names["young"], 60)
    busy = _make(names["busy"], 7200)
    other = _make(names["other"], 7200)  # not a name gradax gives its groups
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (busy[1] / "cgroup.procs").write_text(str(sleeper.pid))  # the pids controller's group is in use
        removed = cgroup.remove_leftovers(older_than_s=3600)
        assert removed >= len(old)  # and any other leftover this machine had
        assert not [p for p in old if p.exists()]
        assert all(p.exists() for p in young + other)
        assert busy[1].exists() and sleeper.pid in [int(x) for x in (busy[1] / "cgroup.procs").read_text().split()]
    finally:
        sleeper.kill()
        sleeper.wait()
