"""The zygote client: the host's side of the bubblewrapped zygote (graders/child/zygote.py) and its children.

`Zygote` starts the zygote inside bubblewrap and a cgroup of its own and sends it `fork` commands over a
SOCK_SEQPACKET socket; a `PoolChild` is the host's ends of one forked child's pipes. `watch_child` runs one
request in a child the pool assigned to a fresh cgroup. Which child serves which submission, how many are
kept warm and when they are recycled is scheduling: graders/pool.py.
"""

from __future__ import annotations

import collections
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graders import cgroup
from graders.child.zygote import FD_NAMES, STATUS
from graders.sandbox import SANDBOX_CODE_ROOT, bwrap_argv, replay_cache_mount, sandbox_python
from graders.supervision import ChildOutcome, ChildPipes, RunMeter, SandboxLimits, supervise

if TYPE_CHECKING:
    from graders.compile_profile import RecordedProfile

ZYGOTE_CAPS = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
_ZYGOTE_BOOT = (
    f"import sys; sys.path.insert(0, {SANDBOX_CODE_ROOT!r}); "
    "import graders.child.zygote as z; z.main()"
)


class PoolUnavailable(Exception):
    """The pool cannot serve this request; the caller falls back to the cold path."""


@dataclass
class PoolChild:
    """One forked grading child: the host's ends of its pipes and where it is in its life."""

    key: str
    ns_pid: int
    fds: dict[str, int]
    generation: int
    # The limits the zygote set at fork (rlimits, tmpfs): a child serves another problem only if they match.
    fork_limits: tuple[int, int, int] = (0, 0, 0)
    created: float = field(default_factory=time.monotonic)
    host_pid: int | None = None
    # A pidfd for host_pid, opened while the child was known alive: signals and liveness checks through it
    # cannot reach another process that reused the pid after the child died.
    pidfd: int | None = None
    ready_at: float | None = None
    # The run group it waits in once ready, made for the limits it was warmed for; the pool owns it
    # (graders/pool.py `_wait_in_run_group`).
    group: cgroup.RunCgroup | None = None

    def exited(self) -> bool:
        """Whether the child is gone (a pidfd becomes readable when its process exits)."""
        if self.pidfd is None:
            return True
        readable, _, _ = select.select([self.pidfd], [], [], 0)
        return bool(readable)

    def kill(self) -> None:
        """SIGKILL the child, if it still runs (its namespace's init then exits, and everything left in it dies)."""
        self.send_signal(signal.SIGKILL)

    def send_signal(self, signum: int) -> None:
        """Send the child a signal through its pidfd, if it still runs (SIGSTOP and SIGCONT hold a ready child's
        replay while a run is in progress: graders/pool.py `_hold_waiting`)."""
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signum)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        for name in list(self.fds):
            try:
                os.close(self.fds.pop(name))
            except OSError:
                pass
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


# The grading child's pid in its own namespace: the namespace's init forks it first.
GRADING_CHILD_NS_PID = 2


def _is_grading_child(ns_pids: list[int], holder_depth: int) -> bool:
    """NSpid of a grading child: one namespace deeper than its holder's, and PID 2 there."""
    return len(ns_pids) == holder_depth + 1 and ns_pids[-1] == GRADING_CHILD_NS_PID


def _ns_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


class Zygote:
    """The bubblewrapped zygote process and the command channel to it."""

    def __init__(self, jax_cache_dir: Path, generation: int, startup_s: float = 120.0):
        self.generation = generation
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._next_id = 0
        self.group = cgroup.RunCgroup(64 * 2**30, 100_000, name=f"pool-{uuid.uuid4().hex[:12]}")
        host_sock, zygote_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = host_sock
        argv = self._argv(zygote_sock.fileno(), jax_cache_dir)
        procs = self.group.procs_files()

        def join_group() -> None:
            cgroup.join_self(procs)
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, pass_fds=(zygote_sock.fileno(),),
                                         preexec_fn=join_group, env={}, cwd="/")
        except OSError:
            self.group.remove()
            raise
        finally:
            zygote_sock.close()
        self.stderr_tail: collections.deque[bytes] = collections.deque(maxlen=64)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.sock.settimeout(startup_s)
        try:
            hello = json.loads(self.sock.recv(65536) or b"{}")
        except (OSError, ValueError) as exc:
            self.stop()
            raise PoolUnavailable(f"the zygote did not start: {exc}; stderr: {self.stderr()}") from exc
        if hello.get("event") != "ready":
            self.stop()
            raise PoolUnavailable(f"the zygote did not start; stderr: {self.stderr()}")
        self.sock.settimeout(30.0)
        self.forked = 0
        self.cpu_at_ready = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        try:
            return self.group.cpu_seconds()
        except OSError:
            return 0.0

    @staticmethod
    def _argv(sock_fd: int, jax_cache_dir: Path) -> list[str]:
        limits = SandboxLimits(tmpfs_mb=16)
        binds, cache_env = replay_cache_mount(jax_cache_dir)
        base = bwrap_argv(limits, sock_fd, ["true"], binds, {"GRADAX_ZYGOTE_FD": str(sock_fd), **cache_env})
        # bwrap_argv ends with `-- setpriv ... <command>`: the zygote keeps the privileges it needs to
        # build each child's namespaces; every child drops all of them before untrusted code runs.
        split = base.index("--")
        argv = base[:split]
        for cap in ZYGOTE_CAPS:
            argv += ["--cap-add", cap]
        return [*argv, "--", sandbox_python(), "-B", "-s", "-c", _ZYGOTE_BOOT]

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line[:2000])

    def stderr(self) -> str:
        return b"".join(self.stderr_tail).decode("utf-8", "replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, key: str, profile: RecordedProfile, limits: SandboxLimits) -> PoolChild:
        """Create the child's pipes, hand their child ends to the zygote, and get the holder's pid."""
        pipes = [os.pipe() for _ in FD_NAMES]
        # stdin: the child reads; every other pipe: the child writes.
        child_ends = [pipes[0][0]] + [w for _, w in pipes[1:]]
        host_ends = {"stdin": pipes[0][1], **{name: r for name, (r, _) in zip(FD_NAMES[1:], pipes[1:], strict=True)}}
        command: dict[str, Any] = {"cmd": "fork", "profile": profile.entries, "extra": profile.extra,
                   "limits": {"tmpfs_mb": limits.tmpfs_mb, "file_size_mb": limits.file_size_mb,
                              "open_files": limits.open_files}}
        try:
            with self._lock:
                self._next_id += 1
                command["id"] = self._next_id
                socket.send_fds(self.sock, [json.dumps(command).encode()], child_ends)
                reply = json.loads(self.sock.recv(65536) or b"{}")
        except (OSError, ValueError) as exc:
            for fd in host_ends.values():
                os.close(fd)
            raise PoolUnavailable(f"the zygote stopped answering: {exc}") from exc
        finally:
            for fd in child_ends:
                os.close(fd)
        if "pid" not in reply:
            for fd in host_ends.values():
                os.close(fd)
            raise PoolUnavailable(f"the zygote refused to fork: {reply}")
        self.forked += 1
        return PoolChild(key, int(reply["pid"]), host_ends, self.generation, fork_limits(limits))

    def resolve(self, child: PoolChild) -> int | None:
        """The host pid of a child: PID 2 of the namespace its holder made (PID 1 is that namespace's init, which
        forks it: graders/child/zygote.py), found through NSpid."""
        for pid in _descendants(self.proc.pid):
            ns = _ns_pids(pid)
            if len(ns) >= 2 and ns[1] == child.ns_pid:
                kids = [k for k in _descendants(pid) if _is_grading_child(_ns_pids(k), len(ns))]
                return kids[0] if kids else None
        return None

    def attach(self, child: PoolChild) -> bool:
        """Resolve the child's host pid and open a pidfd for it; False if it is already gone."""
        pid = self.resolve(child)
        if pid is None:
            return False
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        # The pid was read before the pidfd was opened: make sure it still names a namespace's PID 2 (the
        # child), not a process that reused the pid in between.
        if _ns_pids(pid)[-1:] != [GRADING_CHILD_NS_PID]:
            os.close(pidfd)
            return False
        child.host_pid, child.pidfd = pid, pidfd
        return True

    def memory_bytes(self) -> int:
        try:
            return self.group.memory_current()
        except OSError:
            return 0

    def stop(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.group.remove()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def fork_limits(limits: SandboxLimits) -> tuple[int, int, int]:
    """The part of a run's limits a child gets at fork, not at assignment."""
    return (limits.tmpfs_mb, limits.file_size_mb, limits.open_files)


def read_available(fd: int | None, limit: int = 4000) -> str:
    if fd is None:
        return ""
    readable, _, _ = select.select([fd], [], [], 0)
    if not readable:
        return ""
    try:
        return os.read(fd, 1 << 20)[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""


def restore_priority(pid: int) -> None:
    """Undo the warm-up's nice value on every thread (nice is per thread on Linux; new threads inherit it): 10 while
    it warmed up, 19 while, ready, it replayed more as it waited (graders/child/zygote.py `_warm_while_waiting`)."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, 0)
        except OSError:
            pass


def exit_status(control_fd: int, timeout: float = 2.0) -> int | None:
    """The holder writes `X` + the child's exit status once the child is gone."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < 1 + STATUS.size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([control_fd], [], [], remaining)
        if not readable:
            return None
        chunk = os.read(control_fd, 1 + STATUS.size - len(data))
        if not chunk:
            return None
        data += chunk
    if data[:1] != b"X":
        return None
    code: int = STATUS.unpack(data[1:])[0]
    return code


def watch_child(child: PoolChild, request: bytes, limits: SandboxLimits, group: cgroup.RunCgroup,
                outcome: ChildOutcome) -> bool:
    """Feed the request and supervise the child like a cold run (`supervision.supervise`): time and CPU from outside.

    True when the child finished cleanly, alone in its group, and was left to exit: the outcome is complete, and
    the caller reaps the child and removes the group afterwards (`WarmPool._finish_later`).
    """
    meter = RunMeter.of_group(group)
    pipes = ChildPipes(stdin=os.fdopen(child.fds.pop("stdin"), "wb", buffering=0),
                       stdout=os.fdopen(child.fds.pop("stdout"), "rb", buffering=0),
                       stderr=os.fdopen(child.fds.pop("stderr"), "rb", buffering=0),
                       result_fd=child.fds.pop("result"), request=request, limits=limits, cpu=meter.cpu,
                       memory_peak=group.memory_peak)
    control = child.fds["control"]

    def exit_code(timeout: float | None) -> int | None:
        return exit_status(control, timeout=2.0 if timeout is None else timeout)

    def alone() -> bool:  # nothing the submission started is left beside it
        try:
            return set(group.pids()) <= {child.host_pid}
        except OSError:
            return False

    # The child is already warm: it only has to read the request before it says ready.
    return supervise(pipes, meter, limits, outcome, startup_s=min(limits.startup_s, 10.0),
                     exit_code=exit_code, kill=group.kill_all, alone=alone)
