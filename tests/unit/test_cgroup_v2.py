"""The cgroup v2 backend against a fake cgroupfs (this build machine is cgroup v1), and backend selection.

`FakeKernel` stands in for graders.cgroup._fs: a tmp directory tree with the interface files the kernel
creates (formats copied from Linux 6.x), and the kernel's rules where the backend depends on them:
controllers reach a child only through its parent's cgroup.subtree_control; enabling one in a non-root
group that has processes fails with EBUSY ("no internal processes"); a process cannot join a group that
gives controllers to its children; cgroup.kill kills; cgroup.freeze sets `frozen` in cgroup.events.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from graders import cgroup

ME = os.getpid()
MEMORY_EVENTS = "low 0\nhigh 0\nmax {max}\noom {oom}\noom_kill {oom_kill}\noom_group_kill {oom_kill}\n"
CPU_STAT = ("usage_usec {usage}\nuser_usec 2000000\nsystem_usec 500000\ncore_sched.force_idle_usec 0\n"
            "nr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n")


class FakeKernel(cgroup._Fs):
    def __init__(self, root: Path, proc_self: Path, *, controllers: tuple[str, ...], root_is_real: bool,
                 cgroup_kill: bool = True, memory_peak: bool = True, swap: bool = True, read_only: bool = False):
        self.root, self.proc_self = root, proc_self
        self.root_is_real = root_is_real  # the real root may hold processes; a cgroup namespace's root may not
        self.cgroup_kill, self.memory_peak, self.swap, self.read_only = cgroup_kill, memory_peak, swap, read_only
        self.writes: list[tuple[str, str]] = []
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        root.mkdir()
        self._populate(root, set(controllers))

    # --------------------------------------------------------------------------- helpers for tests
    def rel(self, path: Path) -> str:
        return "/" + str(path.relative_to(self.root)) if path != self.root else "/"

    def group(self, rel: str) -> Path:
        return self.root.joinpath(*[p for p in rel.split("/") if p])

    def setup(self, rel: str, subtree: str = "", procs: tuple[int, ...] = ()) -> Path:
        """Build the starting layout without recording writes."""
        group = self.group(rel)
        self.mkdir(group)
        for ctrl in subtree.split():
            self._enable(group, ctrl)
        for pid in procs:
            self._attach(group, pid)
        return group

    def procs(self, group: Path) -> list[int]:
        return [int(x) for x in self.read(group / "cgroup.procs").split()]

    # --------------------------------------------------------------------------- the _Fs interface
    def read(self, path: Path) -> str:
        if path.name == "cgroup.procs":  # the kernel drops exited (and reaped) tasks
            live = [p for p in path.read_text().split() if not self._gone(int(p))]
            path.write_text("".join(f"{p}\n" for p in live))
        return path.read_text()

    def write(self, path: Path, text: str) -> None:
        if not path.is_file():  # as os.open(O_WRONLY) without O_CREAT
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        self.writes.append((self.rel(path), text))
        group = path.parent
        if self.read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        if path.name == "cgroup.subtree_control":
            for token in text.split():
                assert token[0] == "+", token
                if token[1:] not in self.read(group / "cgroup.controllers").split():
                    raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
                if self.procs(group) and not (group == self.root and self.root_is_real):
                    raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
                self._enable(group, token[1:])
        elif path.name == "cgroup.procs":
            if group != self.root and (group / "cgroup.subtree_control").read_text().split():
                raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
            self._attach(group, int(text))
        elif path.name == "cgroup.kill":
            for pid in self.procs(group):
                self._kill(pid)
        elif path.name == "cgroup.freeze":
            events = (group / "cgroup.events").read_text().replace(f"frozen {1 - int(text)}", f"frozen {int(text)}")
            (group / "cgroup.events").write_text(events)
            path.write_text(text + "\n")
        else:
            path.write_text(text + "\n")

    def mkdir(self, path: Path) -> None:
        if self.read_only and not path.exists():
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        missing = [p for p in [path, *path.parents] if not p.exists()]
        for group in reversed(missing):
            group.mkdir()
            self._populate(group, set((group.parent / "cgroup.subtree_control").read_text().split()))

    def rmdir(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if self.procs(path) or any(p.is_dir() for p in path.iterdir()):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        shutil.rmtree(path)

    # --------------------------------------------------------------------------- kernel internals
    def _populate(self, group: Path, controllers: set[str]) -> None:
        files = {"cgroup.procs": "", "cgroup.threads": "", "cgroup.type": "domain\n",
                 "cgroup.controllers": " ".join(sorted(controllers)) + "\n", "cgroup.subtree_control": "\n",
                 "cpu.stat": CPU_STAT.format(usage=0)}
        if group != self.root:
            files |= {"cgroup.events": "populated 0\nfrozen 0\n", "cgroup.freeze": "0\n"}
            if self.cgroup_kill:
                files["cgroup.kill"] = ""
        for ctrl in controllers:
            files |= self._controller_files(group, ctrl)
        for name, text in files.items():
            if not (group / name).exists():
                (group / name).write_text(text)

    def _controller_files(self, group: Path, ctrl: str) -> dict[str, str]:
        if group == self.root:
            return {}
        if ctrl == "memory":
            files = {"memory.current": "0\n", "memory.max": "max\n", "memory.high": "max\n", "memory.min": "0\n",
                     "memory.low": "0\n", "memory.oom.group": "0\n", "memory.stat": "anon 0\n",
                     "memory.events": MEMORY_EVENTS.format(max=0, oom=0, oom_kill=0),
                     "memory.events.local": MEMORY_EVENTS.format(max=0, oom=0, oom_kill=0)}
            if self.memory_peak:
                files["memory.peak"] = "0\n"
            if self.swap:
                files |= {"memory.swap.max": "max\n", "memory.swap.current": "0\n"}
            return files
        if ctrl == "pids":
            return {"pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n"}
        if ctrl == "cpu":
            return {"cpu.max": "max 100000\n", "cpu.weight": "100\n"}
        return {}

    def _enable(self, group: Path, ctrl: str) -> None:
        enabled = set((group / "cgroup.subtree_control").read_text().split()) | {ctrl}
        (group / "cgroup.subtree_control").write_text(" ".join(sorted(enabled)) + "\n")
        for child in (p for p in group.iterdir() if p.is_dir()):
            offered = set((child / "cgroup.controllers").read_text().split()) | {ctrl}
            (child / "cgroup.controllers").write_text(" ".join(sorted(offered)) + "\n")
            self._populate(child, offered)

    def _attach(self, group: Path, pid: int) -> None:
        for procs in self.root.rglob("cgroup.procs"):
            procs.write_text("".join(f"{p}\n" for p in procs.read_text().split() if int(p) != pid))
        with (group / "cgroup.procs").open("a") as fh:
            fh.write(f"{pid}\n")
        if pid == ME:
            self.proc_self.write_text(f"0::{self.rel(group)}\n")

    def _kill(self, pid: int) -> None:
        assert pid in self.children, f"the fake kernel only kills the test's own children, not {pid}"
        self.children[pid].send_signal(signal.SIGKILL)

    def _gone(self, pid: int) -> bool:
        child = self.children.get(pid)
        return child is not None and child.poll() is not None


SYSTEMD_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
SERVICE = "/system.slice/gradax.service"


@pytest.fixture
def make_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeKernel]]:
    kernels: list[FakeKernel] = []

    def make(*, controllers: tuple[str, ...] = SYSTEMD_CONTROLLERS, root_is_real: bool = True,
             **options: Any) -> FakeKernel:
        kernel = FakeKernel(tmp_path / "cgroup", tmp_path / "proc-self-cgroup", controllers=controllers,
                            root_is_real=root_is_real, **options)
        monkeypatch.setattr(cgroup, "CGROUP_ROOT", kernel.root)
        monkeypatch.setattr(cgroup, "PROC_SELF_CGROUP", kernel.proc_self)
        monkeypatch.setattr(cgroup, "_fs", kernel)
        monkeypatch.delenv(cgroup.PARENT_ENV, raising=False)
        kernels.append(kernel)
        return kernel

    yield make
    for kernel in kernels:
        for child in kernel.children.values():
            if child.poll() is None:
                child.kill()
                child.wait()


@pytest.fixture
def systemd_host(make_kernel: Callable[..., FakeKernel]) -> Callable[..., FakeKernel]:
    """A systemd host: root and system.slice pass the usual controllers down; gradax runs alone in its
    service's cgroup (what Delegate=yes gives), as the kernel puts it: 0::/system.slice/gradax.service."""
    def make(**options: Any) -> FakeKernel:
        kernel = make_kernel(**options)
        kernel.setup("/", subtree="cpu io memory pids")
        kernel.setup("/system.slice", subtree="cpu io memory pids")
        kernel.setup(SERVICE, procs=(ME,))
        kernel.writes.clear()
        return kernel

    return make


def sleeper(kernel: FakeKernel, group: Path) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(["sleep", "60"])
    kernel.children[child.pid] = child
    kernel._attach(group, child.pid)
    return child


# ------------------------------------------------------------------------------------ backend selection


def test_v1_is_chosen_when_its_controllers_are_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for ctrl in cgroup.CONTROLLERS:
        (tmp_path / ctrl).mkdir()
        (tmp_path / ctrl / "cgroup.procs").write_text("")
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")  # v1 wins even if v2 were there too
    monkeypatch.setattr(cgroup, "CGROUP_ROOT", tmp_path)
    assert cgroup.available() is None
    group = cgroup.RunCgroup(1000, 10, name="run-x")
    assert type(group) is cgroup.RunCgroupV1
    assert (tmp_path / "memory/gradax/run-x/memory.limit_in_bytes").read_text() == "1000"
    assert (tmp_path / "pids/gradax/run-x/pids.max").read_text() == "10"
    assert group.procs_files() == [str(tmp_path / c / "gradax/run-x/cgroup.procs") for c in cgroup.CONTROLLERS]
    (tmp_path / "memory/gradax/run-x/memory.usage_in_bytes").write_text("4096\n")
    assert group.memory_current() == 4096
    group.move_charges_on_join()
    assert (tmp_path / "memory/gradax/run-x/memory.move_charge_at_immigrate").read_text() == "3"


def test_v2_is_chosen_when_only_the_unified_hierarchy_exists(systemd_host: Callable[..., FakeKernel],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    systemd_host()
    assert cgroup.available() is None
    assert type(cgroup.RunCgroup(1000, 10)) is cgroup.RunCgroupV2
    real = cgroup.RunCgroup  # still chooses when the module name is wrapped, as test_sandbox's recorder does
    monkeypatch.setattr(cgroup, "RunCgroup", lambda *args, **kwargs: real(*args, **kwargs))
    assert type(cgroup.RunCgroup(1000, 10)) is cgroup.RunCgroupV2


def test_neither_v1_nor_v2_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroup, "CGROUP_ROOT", tmp_path)
    reason = cgroup.available()
    assert reason and "cgroup v1 controller 'memory' is not mounted" in reason
    assert "no cgroup v2 unified hierarchy" in reason
    with pytest.raises(cgroup.CgroupUnavailable, match="no cgroup v2 unified hierarchy"):
        cgroup.RunCgroup(1000, 10)


@pytest.mark.parametrize("missing", ["memory", "pids"])
def test_v2_without_memory_or_pids_fails_closed(make_kernel: Callable[..., FakeKernel], missing: str) -> None:
    kernel = make_kernel(controllers=tuple(c for c in SYSTEMD_CONTROLLERS if c != missing))
    kernel.setup("/", procs=(ME,))
    reason = cgroup.available()
    assert reason == (f"cgroup v2: controller(s) {missing} not available at {kernel.root} (cgroup.controllers: "
                      + " ".join(sorted(c for c in SYSTEMD_CONTROLLERS if c != missing)) + ")")
    with pytest.raises(cgroup.CgroupUnavailable, match=f"controller\\(s\\) {missing} not available"):
        cgroup.RunCgroup(1000, 10)


# ------------------------------------------------------------------------------------ set-up and limits


def test_limits_and_the_no_internal_processes_fallback(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host()
    group = cgroup.RunCgroup(256 * 2**20, 100, name="run-a")
    svc = SERVICE
    assert kernel.writes == [
        # Our own cgroup has a process (us): EBUSY, so we move to a leaf and retry.
        (f"{svc}/cgroup.subtree_control", "+memory"),
        (f"{svc}/gradax-host/cgroup.procs", str(ME)),
        (f"{svc}/cgroup.subtree_control", "+memory"),
        (f"{svc}/cgroup.subtree_control", "+pids"),
        (f"{svc}/cgroup.subtree_control", "+cpu"),
        (f"{svc}/gradax/cgroup.subtree_control", "+memory"),
        (f"{svc}/gradax/cgroup.subtree_control", "+pids"),
        (f"{svc}/gradax/cgroup.subtree_control", "+cpu"),
        (f"{svc}/gradax/run-a/memory.max", str(256 * 2**20)),
        (f"{svc}/gradax/run-a/memory.swap.max", "0"),
        (f"{svc}/gradax/run-a/memory.oom.group", "1"),
        (f"{svc}/gradax/run-a/pids.max", "100"),
    ]
    assert kernel.proc_self.read_text() == f"0::{svc}/gradax-host\n"
    run = kernel.group(f"{svc}/gradax/run-a")
    assert group.procs_files() == [str(run / "cgroup.procs")]
    assert group.directories() == [run]
    assert (run / "memory.max").read_text() == f"{256 * 2**20}\n"

    # Set up once: the next run (from gradax-host now) writes only its own limits, under the same parent.
    kernel.writes.clear()
    other = cgroup.RunCgroup(2**30, 7, name="run-b")
    assert [w[0] for w in kernel.writes] == [f"{svc}/gradax/run-b/{f}"
                                             for f in ("memory.max", "memory.swap.max", "memory.oom.group", "pids.max")]
    for g in (group, other):
        g.remove()
        assert not g.directories()[0].exists()


def test_controllers_are_enabled_from_the_lowest_ancestor_that_has_them(
        make_kernel: Callable[..., FakeKernel]) -> None:
    kernel = make_kernel()
    kernel.setup("/", subtree="memory pids")  # no cpu offered below the root
    kernel.setup("/a")  # offers memory and pids to nobody yet
    kernel.setup("/a/b", procs=(ME,))
    kernel.writes.clear()
    assert cgroup.available() is None
    assert kernel.writes == [
        ("/a/cgroup.subtree_control", "+memory"), ("/a/cgroup.subtree_control", "+pids"),
        ("/a/b/cgroup.subtree_control", "+memory"),
        ("/a/b/gradax-host/cgroup.procs", str(ME)),
        ("/a/b/cgroup.subtree_control", "+memory"), ("/a/b/cgroup.subtree_control", "+pids"),
        ("/a/b/gradax/cgroup.subtree_control", "+memory"), ("/a/b/gradax/cgroup.subtree_control", "+pids"),
    ]  # the root is never written, and cpu is skipped where it is not offered


def test_other_processes_in_our_cgroup_fail_closed(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host()
    sleeper(kernel, kernel.group(SERVICE))  # e.g. a shell that started gradax
    reason = cgroup.available()
    assert reason and "still has 1 other process(es)" in reason
    assert cgroup.PARENT_ENV in reason and "Delegate=yes" in reason
    with pytest.raises(cgroup.CgroupUnavailable, match="still has 1 other"):
        cgroup.RunCgroup(1000, 10)


def test_ebusy_outside_our_own_cgroup_is_not_worked_around(make_kernel: Callable[..., FakeKernel]) -> None:
    kernel = make_kernel(root_is_real=False)  # a container's cgroup namespace: its root may not hold processes
    kernel.setup("/", procs=(ME,))
    kernel.setup("/init")
    kernel.write(kernel.group("/init/cgroup.procs"), str(ME))
    sleeper(kernel, kernel.root)
    kernel.writes.clear()
    reason = cgroup.available()  # parent is /init/gradax; /init lacks the controllers, so the root must pass them
    assert reason and reason.startswith(f"cgroup v2: cannot enable memory in {kernel.root}/cgroup.subtree_control")
    assert "Device or resource busy" in reason and "--cgroupns=private" in reason
    assert not any(cgroup.V2_HOST_LEAF in path for path, _ in kernel.writes)  # moving us would not help


def test_container_with_a_private_cgroup_namespace(make_kernel: Callable[..., FakeKernel]) -> None:
    kernel = make_kernel(root_is_real=False)
    kernel.setup("/", procs=(ME,))  # /proc/self/cgroup says 0::/ inside the namespace
    assert cgroup.available() is None
    group = cgroup.RunCgroup(1000, 10, name="run-c")
    assert group.directories() == [kernel.group("/gradax/run-c")]
    assert kernel.proc_self.read_text() == "0::/gradax-host\n"
    assert set(kernel.read(kernel.root / "cgroup.subtree_control").split()) == {"cpu", "memory", "pids"}


def test_configured_parent(make_kernel: Callable[..., FakeKernel], monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = make_kernel()
    kernel.setup("/", subtree="cpu memory pids")
    kernel.setup(SERVICE, procs=(ME,))
    kernel.writes.clear()
    monkeypatch.setenv(cgroup.PARENT_ENV, "/gradax-runs/")
    group = cgroup.RunCgroup(1000, 10, name="run-d")
    assert group.directories() == [kernel.group("/gradax-runs/run-d")]
    assert [w for w in kernel.writes if "subtree_control" in w[0]] == [
        ("/gradax-runs/cgroup.subtree_control", f"+{c}") for c in ("memory", "pids", "cpu")]
    assert kernel.proc_self.read_text() == f"0::{SERVICE}\n"  # nothing to move: the parent has no processes

    monkeypatch.setenv(cgroup.PARENT_ENV, "/gradax-runs/../..")
    assert "is outside the hierarchy" in (cgroup.available() or "")


def test_hierarchy_that_is_not_ours_fails_closed(make_kernel: Callable[..., FakeKernel]) -> None:
    # The host's /sys/fs/cgroup bind-mounted into a container with its own cgroup namespace: the process
    # says 0::/ but is not in the mounted root.
    kernel = make_kernel()
    kernel.setup("/system.slice/docker-1.scope", procs=(ME,))
    kernel.proc_self.write_text("0::/\n")
    reason = cgroup.available()
    assert reason and "is not this process's cgroup hierarchy" in reason


def test_read_only_cgroupfs_fails_closed(make_kernel: Callable[..., FakeKernel]) -> None:
    kernel = make_kernel(root_is_real=False)
    kernel.setup("/", procs=(ME,))
    kernel.read_only = True
    reason = cgroup.available()
    assert reason and reason.startswith(f"cgroup v2: cannot create {kernel.root}/gradax: Read-only file system")
    assert "delegated, writable cgroup v2 subtree" in reason


def test_a_failed_limit_write_leaves_no_group(systemd_host: Callable[..., FakeKernel],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = systemd_host()
    assert cgroup.available() is None
    real_write = kernel.write

    def refuse_pids(path: Path, text: str) -> None:
        if path.name == "pids.max":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(path))
        real_write(path, text)

    monkeypatch.setattr(kernel, "write", refuse_pids)
    with pytest.raises(OSError):
        cgroup.RunCgroup(1000, 10, name="run-e")
    assert not kernel.group(f"{SERVICE}/gradax/run-e").exists()


def test_pool_group(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host()
    group = cgroup.RunCgroup(64 * 2**30, 100_000, name="pool-0123456789ab")
    path = kernel.group(f"{SERVICE}/gradax/pool-0123456789ab")
    assert (path / "memory.max").read_text() == "68719476736\n"
    assert (path / "pids.max").read_text() == "100000\n"
    (path / "memory.current").write_text("123456789\n")
    assert group.memory_current() == 123456789
    kernel.writes.clear()
    group.move_charges_on_join()  # v2 cannot move charges: nothing to write
    assert kernel.writes == []


# ------------------------------------------------------------------------------------ accounting


def test_accounting_reads_the_kernel_formats(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host()
    group = cgroup.RunCgroup(320 * 2**20, 10, name="run-f")
    run = kernel.group(f"{SERVICE}/gradax/run-f")
    (run / "cpu.stat").write_text(CPU_STAT.format(usage=2500000))
    (run / "memory.peak").write_text("335544320\n")
    (run / "memory.current").write_text("1048576\n")
    assert group.cpu_seconds() == 2.5
    assert group.memory_peak() == 320 * 2**20
    assert group.memory_current() == 2**20
    assert not group.oom_killed() and not group.memory_limit_reached() and not group.memory_limit_hit()

    # Pinned at the limit, reclaim kept it alive: reached, not killed.
    (run / "memory.events").write_text(MEMORY_EVENTS.format(max=3, oom=0, oom_kill=0))
    assert group.memory_limit_reached() and not group.oom_killed() and not group.memory_limit_hit()

    (run / "memory.events").write_text(MEMORY_EVENTS.format(max=17, oom=1, oom_kill=1))
    assert group.oom_killed() and group.memory_limit_reached() and group.memory_limit_hit()


def test_peak_without_memory_peak_is_the_largest_sample(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host(memory_peak=False)  # kernels before 5.19
    group = cgroup.RunCgroup(2**30, 10, name="run-g")
    run = kernel.group(f"{SERVICE}/gradax/run-g")
    assert not (run / "memory.peak").exists()
    for current in (100 * 2**20, 300 * 2**20, 50 * 2**20):
        (run / "memory.current").write_text(f"{current}\n")
        group.cpu_seconds()  # the watchers poll CPU; each poll samples memory.current
    assert group.memory_peak() == 300 * 2**20


# ------------------------------------------------------------------------------------ kill


def test_kill_writes_cgroup_kill_when_the_kernel_has_it(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host()
    group = cgroup.RunCgroup(2**30, 10, name="run-h")
    child = sleeper(kernel, group.directories()[0])
    kernel.writes.clear()
    group.remove()
    assert child.poll() == -signal.SIGKILL
    assert (f"{SERVICE}/gradax/run-h/cgroup.kill", "1") in kernel.writes
    assert not any(path.endswith("cgroup.freeze") for path, _ in kernel.writes)
    assert not group.directories()[0].exists()


def test_kill_freezes_without_cgroup_kill(systemd_host: Callable[..., FakeKernel]) -> None:
    kernel = systemd_host(cgroup_kill=False)  # kernels before 5.14
    group = cgroup.RunCgroup(2**30, 10, name="run-i")
    run = group.directories()[0]
    assert not (run / "cgroup.kill").exists()
    children = [sleeper(kernel, run) for _ in range(3)]
    kernel.writes.clear()
    group.kill_all()
    assert all(child.poll() == -signal.SIGKILL for child in children)
    freeze = f"{SERVICE}/gradax/run-i/cgroup.freeze"
    assert kernel.writes[:2] == [(freeze, "1"), (freeze, "0")]
    assert all(path == freeze for path, _ in kernel.writes)
    assert "frozen 0" in (run / "cgroup.events").read_text()  # thawed again
    assert group.pids() == []
    group.remove()
    assert not run.exists()
