"""The cgroup v2 backend against a REAL cgroup2 hierarchy (the fake-kernel tests are in test_cgroup_v2.py).

Runs where /sys/fs/cgroup is the unified hierarchy with the memory and pids controllers, as root in the
host's cgroup namespace: any current systemd distribution (Debian 12 included) and the CI-like Debian 12
VM described in docs/scale.md. It skips on cgroup v1 or hybrid hosts such as the build machine, whose
unified hierarchy has no controllers: a controller bound to a v1 hierarchy that has groups in use cannot
be bound to v2, and that needs the kernel command line (cgroup_no_v1=all) or an unmount of every v1
group, neither of which a test may do to a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from graders import cgroup

ROOT = Path("/sys/fs/cgroup")
REPO = Path(__file__).resolve().parents[2]


def _why_not() -> str | None:
    if not (ROOT / "cgroup.controllers").exists():
        return f"{ROOT} is not a cgroup v2 unified hierarchy (cgroup v1 or hybrid host)"
    controllers = (ROOT / "cgroup.controllers").read_text().split()
    if not {"memory", "pids"} <= set(controllers):
        return f"the cgroup v2 root offers {controllers}, not memory and pids"
    if os.geteuid() != 0:
        return "needs root"
    own = Path("/proc/self/cgroup").read_text()
    if "0::/" not in own:
        return f"no unified-hierarchy line in /proc/self/cgroup: {own!r}"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=f"no real cgroup v2 here: {_why_not()}")


@pytest.fixture
def base() -> Iterator[Path]:
    """An empty cgroup just under the root (the root may hold processes and passes controllers down),
    removed with everything below it at the end."""
    group = ROOT / f"gradax-kernel-test-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    subtree = (ROOT / "cgroup.subtree_control").read_text().split()
    for ctrl in ("memory", "pids", "cpu"):
        if ctrl not in subtree:
            (ROOT / "cgroup.subtree_control").write_text(f"+{ctrl}")
    try:
        yield group
    finally:
        for path in sorted(group.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                _evacuate_and_remove(path)
        _evacuate_and_remove(group)


def _evacuate_and_remove(group: Path) -> None:
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            (ROOT / "cgroup.procs").write_text(pid)
        except OSError:
            pass
    for _ in range(100):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


def _run_in(group: cgroup.RunCgroup, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A Python child that joins the run's group before it runs `code` (as the sandbox's children do)."""
    procs = group.procs_files()

    def join() -> None:
        for path in procs:
            with open(path, "w") as fh:
                fh.write("0")

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=join)



@pytest.fixture
def run_group(base: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[cgroup.RunCgroup]:
    monkeypatch.setenv(cgroup.PARENT_ENV, "/" + base.name)
    group = cgroup.RunCgroup(memory_bytes=96 * 1024 * 1024, pids=24)
    assert isinstance(group, cgroup.RunCgroupV2), "a v2-only host must get the v2 backend"
    yield group
    group.remove()


def test_memory_limit_kills_and_is_reported(run_group: cgroup.RunCgroup) -> None:
    assert (run_group.directories()[0] / "memory.max").read_text().strip() == str(96 * 1024 * 1024)
    proc = _run_in(run_group, """
        blocks = []
        for _ in range(64):
            blocks.append(bytearray(8 * 1024 * 1024))   # 512 MiB in all, against a 96 MiB limit
        print("survived")
    """)
    assert proc.returncode == -9 and "survived" not in proc.stdout, (proc.returncode, proc.stderr[-2000:])
    assert run_group.oom_killed() and run_group.memory_limit_reached() and run_group.memory_limit_hit()
    assert run_group.memory_peak() >= 90 * 1024 * 1024


def test_pids_limit_stops_a_fork_bomb_and_cpu_is_counted(run_group: cgroup.RunCgroup) -> None:
    proc = _run_in(run_group, """
        import os, time
        end = time.process_time() + 0.3
        while time.process_time() < end:
            pass                                          # 0.3 CPU-s, counted in cpu.stat
        children = []
        try:
            for _ in range(200):
                pid = os.fork()
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                children.append(pid)
        except OSError as exc:
            print("refused", len(children), exc.errno)
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    words = proc.stdout.split()
    assert words[0] == "refused" and int(words[1]) < 24, proc.stdout  # pids.max = 24, the child included
    assert run_group.cpu_seconds() >= 0.25
    assert not run_group.oom_killed()


def test_kill_all_kills_escaped_daemons_and_remove_deletes_the_group(base: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cgroup.PARENT_ENV, "/" + base.name)
    group = cgroup.RunCgroup(memory_bytes=256 * 1024 * 1024, pids=64)
    proc = _run_in(group, """
        import os, time
        for _ in range(3):                     # double-forked, new sessions: no longer our children
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    null = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):       # let go of the test's pipes, as a daemon does
                        os.dup2(null, fd)
                    time.sleep(300)
                os._exit(0)
        time.sleep(0.2)
        print("started")
    """)
    assert proc.stdout.strip() == "started", proc.stderr
    assert len(group.pids()) == 3
    path = group.directories()[0]
    group.remove()
    assert not path.exists()


def test_default_parent_moves_a_lone_process_to_a_leaf_and_refuses_a_shared_cgroup(base: Path) -> None:
    """No GRADAX_CGROUP_PARENT: `<own cgroup>/gradax` holds the runs. cgroup v2 gives no controllers to the
    children of a group with processes, so a process alone in its group (a container's main process, a
    systemd scope) moves itself to `<own>/gradax-host`; one that shares its group must refuse, saying why."""
    env = {k: v for k, v in os.environ.items() if k != cgroup.PARENT_ENV}
    code = textwrap.dedent("""
        import json
        from graders import cgroup
        try:
            group = cgroup.RunCgroup(memory_bytes=64 << 20, pids=16)
        except cgroup.CgroupUnavailable as exc:
            print(json.dumps({"error": str(exc)}))
        else:
            print(json.dumps({"run": str(group.directories()[0]), "kind": type(group).__name__,
                              "own": open("/proc/self/cgroup").read().strip()}))
            group.remove()
    """)

    def start(group: Path, extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        def join() -> None:
            with open(group / "cgroup.procs", "w") as fh:
                fh.write("0")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              env=env, cwd=REPO, preexec_fn=join)

    alone = base / "alone"
    alone.mkdir()
    result = start(alone)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out.get("kind") == "RunCgroupV2", out
    assert out["run"].startswith(str(alone / "gradax") + "/"), out
    assert out["own"].endswith(f"/{base.name}/alone/gradax-host"), out
    assert {"memory", "pids"} <= set((alone / "cgroup.subtree_control").read_text().split())

    shared = base / "shared"
    shared.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: (shared / "cgroup.procs").write_text("0"))
    try:
        refused = json.loads(start(shared).stdout)
        assert "other process" in refused.get("error", ""), refused
    finally:
        sleeper.kill()
        sleeper.wait()
