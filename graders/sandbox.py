"""Run the grading harness in a child process, contained by bubblewrap and cgroups.

Layers, outermost first:
- a per-run cgroup (graders/cgroup.py: v1 memory, pids, cpuacct, freezer, or one v2 group) joined
  before `exec`, so every descendant is limited, accounted and killable even after `setsid` and double
  forks;
- rlimits: no core files, capped file size and open files;
- bubblewrap: new PID, network, IPC, UTS and cgroup namespaces, a root made only of read-only binds
  of the system, the Python installation, the virtualenv and the harness code, a private size-capped
  tmpfs at /tmp, cleared environment, `--die-with-parent`, `--new-session`;
- `setpriv`: the program runs as `nobody` with no capabilities and `no_new_privs`.

Time is enforced from outside: the parent watches the wall clock and the group's CPU time and kills
the whole group. Results come back only as wire messages on a pipe the parent created; stdout and
stderr are drained and capped. The host never opens a path the sandbox could have written.
"""

from __future__ import annotations

import os
import queue
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from graders import cgroup, wire

GRADERS_DIR = Path(__file__).resolve().parent
SANDBOX_CODE_ROOT = "/opt/gradax"
VENV_MOUNT = f"{SANDBOX_CODE_ROOT}/venv"
NOBODY = 65534
_HARNESS_BOOT = (
    f"import sys; sys.path.insert(0, {SANDBOX_CODE_ROOT!r}); "
    "import graders.harness as h; h.main()"
)


def default_pids() -> int:
    return 64 + 2 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run. `time_s` counts from the moment the libraries are imported."""

    time_s: float = 10.0
    cpu_s: float | None = None  # CPU seconds of the whole group; default 2 x time_s (XLA threads)
    memory_mb: int = 2048
    # Threads count too: XLA starts a pool per core, so the limit grows with the machine.
    pids: int = field(default_factory=default_pids)
    result_bytes: int = 16 * 1024 * 1024
    log_bytes: int = 8 * 1024
    file_size_mb: int = 16
    open_files: int = 256
    tmpfs_mb: int = 64
    tmpfs_inodes: int = 8192
    startup_s: float = 60.0

    @property
    def cpu_limit(self) -> float:
        return self.cpu_s if self.cpu_s is not None else 2 * self.time_s


@dataclass
class ChildOutcome:
    """Everything the parent observed about one child run; judging it is the engine's job."""

    messages: list[wire.Message] = field(default_factory=list)
    wire_error: str | None = None
    stdout: bytes = b""
    stdout_total: int = 0
    stderr: bytes = b""
    stderr_total: int = 0
    exit_code: int | None = None
    timed_out: bool = False
    startup_timed_out: bool = False
    cpu_exceeded: bool = False
    memory_exceeded: bool = False
    memory_limit_reached: bool = False  # usage touched the limit at some point (memory.failcnt > 0)
    result_overflow: bool = False
    start_error: str | None = None
    ready_ms: float | None = None
    run_ms: float | None = None
    cpu_seconds: float | None = None
    memory_peak: int | None = None
    sandboxed: bool = True

    def events(self, name: str) -> list[wire.Message]:
        return [m for m in self.messages if m.header.get("event") == name]


class SandboxError(Exception):
    """The sandbox could not be started: grading must fail closed."""


def _ancestors(path: Path) -> list[str]:
    parts = []
    for parent in reversed(path.parents):
        if str(parent) != "/":
            parts.append(str(parent))
    return parts


def bwrap_argv(limits: SandboxLimits, result_fd: int, command: Sequence[str],
               extra_ro_binds: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The bubblewrap command line; only read-only binds of code, never project data."""
    bwrap = shutil.which("bwrap")
    setpriv = shutil.which("setpriv")
    shell = shutil.which("sh")
    if not bwrap:
        raise SandboxError("bubblewrap (bwrap) is not installed; install the Debian package 'bubblewrap'")
    mount = shutil.which("mount")
    if not setpriv or not shell or not mount:
        raise SandboxError("setpriv, mount or sh (util-linux, dash) is not installed")
    for tool in (setpriv, shell, mount):
        if not os.path.realpath(tool).startswith("/usr/"):
            raise SandboxError(f"{tool} is not under /usr, so it would not exist inside the sandbox")
    argv = [
        bwrap,
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--clearenv",
        "--hostname", "sandbox",
    ]
    # The system: /usr read-only, merged-/usr symlinks recreated.
    argv += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = Path("/") / link
        if target.is_symlink():
            argv += ["--symlink", os.readlink(target), f"/{link}"]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), f"/{link}"]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(etc):
            argv += ["--ro-bind", etc, etc]
    binds: list[tuple[str, str]] = []
    base = os.path.realpath(sys.base_prefix)
    if not base.startswith("/usr"):
        binds.append((base, base))
    if _in_venv():
        # The virtualenv gets a fixed place: a checkout under /tmp would otherwise be hidden by the
        # sandbox's own /tmp. A venv finds itself from its interpreter's path, so it can move.
        binds.append((sys.prefix, VENV_MOUNT))
    binds.append((str(GRADERS_DIR), f"{SANDBOX_CODE_ROOT}/graders"))
    binds += list(extra_ro_binds)
    made: set[str] = {"/usr", "/tmp"}
    for src, dest in sorted(set(binds), key=lambda b: b[1]):
        # bwrap creates missing parents with mode 0700, which `nobody` cannot traverse.
        for parent in _ancestors(Path(dest)):
            if parent not in made:
                argv += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        argv += ["--ro-bind", src, dest]
        made.add(dest)
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--dir", "/tmp"]
    env = {
        "HOME": "/tmp", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "JAX_PLATFORMS": "cpu",
        "TMPDIR": "/tmp", "GRADAX_RESULT_FD": str(result_fd), "PYTHONDONTWRITEBYTECODE": "1",
        "GRADAX_SECCOMP": "1",
        "PYTHONHASHSEED": "0",
    }
    for key, value in env.items():
        argv += ["--setenv", key, value]
    # bwrap's --tmpfs takes a size but no inode count, so a fixed root shell mounts the private /tmp
    # (size- and inode-capped) with the one capability it keeps, then setpriv drops to `nobody` with no
    # capabilities at all before anything of the submission runs.
    mount_tmp = (f"{shlex.quote(os.path.realpath(mount))} -t tmpfs "
                 "-o size=$1,nr_inodes=$2,mode=1777,nosuid,nodev gradax-tmp /tmp && cd /tmp && shift 2 && exec \"$@\"")
    argv += [
        "--cap-add", "CAP_SYS_ADMIN",
        "--", shell, "-c", mount_tmp, "gradax-mount-tmp",
        str(limits.tmpfs_mb * 1024 * 1024), str(limits.tmpfs_inodes),
        setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--no-new-privs",
        "--bounding-set=-all", "--inh-caps=-all",
    ]
    return argv + list(command)


def _in_venv() -> bool:
    return sys.prefix != sys.base_prefix and os.path.abspath(sys.executable).startswith(sys.prefix + os.sep)


def sandbox_python() -> str:
    """The path of this interpreter as seen inside the sandbox (the virtualenv is mounted at VENV_MOUNT)."""
    if not _in_venv():
        return sys.executable
    return f"{VENV_MOUNT}/{os.path.relpath(os.path.abspath(sys.executable), sys.prefix)}"


def harness_command(*, sandboxed: bool = True) -> list[str]:
    """The harness command line: the interpreter's sandbox path inside bwrap, its host path outside."""
    return [sandbox_python() if sandboxed else sys.executable, "-B", "-s", "-c", _HARNESS_BOOT]


def _reader(stream: IO[bytes], keep: int, sink: dict[str, Any], key: str) -> None:
    data, total = wire.read_capped(stream, keep)
    sink[key] = (data, total)


def _results_reader(fd: int, decoder: wire.StreamDecoder, out: queue.Queue[Any]) -> None:
    """Decode result messages as they arrive; stop at EOF, overflow or garbage."""
    with os.fdopen(fd, "rb", buffering=0) as stream:
        while True:
            try:
                chunk = stream.read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                out.put(("eof", None))
                return
            try:
                for message in decoder.feed(chunk):
                    out.put(("message", (time.monotonic(), message)))
            except wire.BudgetExceeded as exc:
                out.put(("overflow", str(exc)))
                _drain(stream)
                return
            except wire.WireError as exc:
                # Messages decoded before the garbage in the same read still count: a submission that
                # writes junk on the result pipe right after the child said `ready` (the warm pool's child
                # says it just before loading the code) is the submission's fault, not a failed start.
                at = time.monotonic()
                for message in exc.messages:
                    out.put(("message", (at, message)))
                out.put(("garbage", str(exc)))
                _drain(stream)
                return


def _drain(stream: IO[bytes]) -> None:
    while stream.read(65536):
        pass


def _limit_resources(limits: SandboxLimits, procs_files: list[str]) -> Callable[[], None]:
    def apply() -> None:
        # Runs in the forked child before exec: join the run's cgroups, then cap what rlimits cap.
        pid = str(os.getpid()).encode()
        for path in procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        size = limits.file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        cpu = int(limits.cpu_limit + limits.startup_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    return apply


def run_harness(request: bytes, limits: SandboxLimits, *, sandboxed: bool = True,
                extra_ro_binds: Sequence[tuple[str, str]] = ()) -> ChildOutcome:
    """Start a harness child, feed it `request`, and watch it until it finishes or is killed."""
    outcome = ChildOutcome(sandboxed=sandboxed)
    group: cgroup.RunCgroup | None = None
    read_fd, write_fd = os.pipe()
    pass_fds = [write_fd]
    try:
        if sandboxed:
            group = cgroup.RunCgroup(limits.memory_mb * 1024 * 1024, limits.pids)
            argv = bwrap_argv(limits, write_fd, harness_command(), extra_ro_binds)
            preexec = _limit_resources(limits, group.procs_files())
            env: dict[str, str] | None = {}
            cwd = "/"
        else:
            argv = harness_command(sandboxed=False)
            preexec = None
            env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "HOME": "/tmp", "LANG": "C.UTF-8",
                   "GRADAX_RESULT_FD": str(write_fd), "PYTHONPATH": str(GRADERS_DIR.parent)}
            cwd = "/tmp"
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=pass_fds, preexec_fn=preexec, env=env, cwd=cwd,
            start_new_session=not sandboxed,
        )
    except (cgroup.CgroupUnavailable, SandboxError, OSError, subprocess.SubprocessError) as exc:
        os.close(read_fd)
        for fd in pass_fds:
            os.close(fd)
        if group is not None:
            group.remove()
        outcome.start_error = f"the sandbox could not start: {exc}"
        return outcome
    for fd in pass_fds:
        os.close(fd)
    try:
        _watch(proc, request, read_fd, limits, group, outcome)
    finally:
        if group is not None:
            finish_group(group, outcome)
        elif proc.poll() is None:
            _kill_session(proc)
    return outcome


def finish_group(group: cgroup.RunCgroup, outcome: ChildOutcome) -> None:
    """Read what the run's cgroup measured into the outcome, then kill what is left and remove the group.

    Shared by the cold sandbox and the warm pool, so both judge memory the same way: a run stopped by time
    while pinned at its limit counts as memory_limit_exceeded (see `memory_limit_reached`).
    """
    outcome.memory_exceeded = outcome.memory_exceeded or group.oom_killed()
    try:
        outcome.memory_limit_reached = group.memory_limit_reached()
    except OSError:
        pass
    try:
        outcome.memory_peak = group.memory_peak()
        outcome.cpu_seconds = group.cpu_seconds()
    except OSError:
        pass
    group.remove()


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, 9)
    except ProcessLookupError:
        pass
    proc.wait()


def _watch(proc: subprocess.Popen[bytes], request: bytes, read_fd: int, limits: SandboxLimits,
           group: cgroup.RunCgroup | None, outcome: ChildOutcome) -> None:
    assert proc.stdin and proc.stdout and proc.stderr
    logs: dict[str, Any] = {}
    events: queue.Queue[Any] = queue.Queue()
    decoder = wire.StreamDecoder(limits.result_bytes)
    threads = [
        threading.Thread(target=_reader, args=(proc.stdout, limits.log_bytes, logs, "stdout"), daemon=True),
        threading.Thread(target=_reader, args=(proc.stderr, limits.log_bytes, logs, "stderr"), daemon=True),
        threading.Thread(target=_results_reader, args=(read_fd, decoder, events), daemon=True),
        threading.Thread(target=_feed, args=(proc.stdin, request), daemon=True),
    ]
    for t in threads:
        t.start()
    ready_at = watch_events(events, limits, group, outcome, startup_s=limits.startup_s)
    end = time.monotonic()
    if ready_at is not None:
        outcome.run_ms = (end - ready_at) * 1000
    # Give a child that finished normally a moment to exit on its own, then kill whatever is left.
    try:
        outcome.exit_code = proc.wait(timeout=0.5 if not (outcome.timed_out or outcome.cpu_exceeded) else 0)
    except subprocess.TimeoutExpired:
        pass
    if group is not None:
        group.kill_all()
    else:
        _kill_session(proc)
    if outcome.exit_code is None:
        outcome.exit_code = proc.wait()
    for t in threads[:2]:
        t.join(timeout=2)
    outcome.stdout, outcome.stdout_total = logs.get("stdout", (b"", 0))
    outcome.stderr, outcome.stderr_total = logs.get("stderr", (b"", 0))


def watch_events(events: queue.Queue[Any], limits: SandboxLimits, group: cgroup.RunCgroup | None,
                 outcome: ChildOutcome, *, startup_s: float) -> float | None:
    """Collect a child's result messages until it is done, fails, or passes its time or CPU limit.

    Returns when the child said ready (monotonic time), or None if it never did. Shared by the cold
    sandbox and the warm pool so both judge limits the same way.
    """
    started = time.monotonic()
    ready_at: float | None = None
    cpu_at_ready = 0.0
    deadline = started + startup_s
    finished = False
    while not finished:
        timeout = max(0.0, min(deadline - time.monotonic(), 0.05))
        try:
            kind, payload = events.get(timeout=timeout)
        except queue.Empty:
            kind, payload = "tick", None
        if kind == "message":
            at, message = payload
            outcome.messages.append(message)
            if message.header.get("event") == "ready" and ready_at is None:
                ready_at = at
                outcome.ready_ms = (at - started) * 1000
                deadline = at + limits.time_s
                cpu_at_ready = _group_cpu(group)
            if message.header.get("event") == "done":
                finished = True
        elif kind == "eof":
            finished = True
        elif kind == "overflow":
            outcome.result_overflow = True
            finished = True
        elif kind == "garbage":
            outcome.wire_error = payload
            finished = True
        if not finished and time.monotonic() >= deadline:
            if ready_at is None:
                outcome.startup_timed_out = True
            else:
                outcome.timed_out = True
            finished = True
        if not finished and ready_at is not None and _group_cpu(group) - cpu_at_ready > limits.cpu_limit:
            outcome.cpu_exceeded = True
            finished = True
    return ready_at


def _group_cpu(group: cgroup.RunCgroup | None) -> float:
    if group is None:
        return 0.0
    try:
        return group.cpu_seconds()
    except OSError:
        return 0.0


def _feed(stdin: IO[bytes], request: bytes) -> None:
    try:
        stdin.write(request)
        stdin.close()
    except (BrokenPipeError, OSError):
        pass


def warn_unsandboxed() -> None:
    message = ("GRADAX_SANDBOX=none: submissions run WITHOUT a sandbox. Use this only for trusted code "
               "on your own machine, never on a server.")
    warnings.warn(message, RuntimeWarning, stacklevel=2)
    print(f"WARNING: {message}", file=sys.stderr)
