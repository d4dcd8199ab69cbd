"""The zygote: a process inside bubblewrap that imported jax/flax/optax and forks grading children.

It runs trusted code only and never starts the XLA backend (no devices, no arrays): forking after the
backend started deadlocks the child. The host (graders/pool.py) talks to it over a SOCK_SEQPACKET
socket: each `fork` command carries a compile profile and five pipe ends the host created (stdin,
stdout, stderr, results, control). For each command the zygote forks a holder that

1. unshares mount, PID, network and IPC namespaces and forks the namespace's init (`_init`), which forks
   the grading child, PID 2 of its own PID namespace (so `kill(-1, 9)` reaches only its own descendants,
   and signals it sends itself act as in a cold sandbox), in its own network namespace (no abstract-socket
   channel to siblings);
2. the child makes mounts private, puts a fresh size-capped tmpfs on /tmp and /dev/shm and a new devpts
   instance on /dev/pts (no pty is shared with a sibling), mounts a /proc that shows only its own
   namespace, sets rlimits, and drops to `nobody` with empty capability sets and `no_new_privs`,
   installs the seccomp filter (graders/child/seccomp.py) while still single-threaded, then starts its
   backend and replays the problem's compile profile;
3. it writes `R` on the control pipe; until its request arrives on stdin it replays the profile's `extra`
   entries at nice 19 (`_warm_while_waiting`), then reads the request. The host moves it into a per-run cgroup
   before writing the request, so the submission's code only ever runs inside it;
4. the init reports the child's wait status to the holder on a pipe of their own; the holder (also stripped
   of privileges) waits for the init and writes that status on the control pipe; the child closed its own
   copy before any untrusted code ran.

A child serves exactly one request and then exits.
"""

from __future__ import annotations

import fcntl
import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
from typing import Any

NOBODY = 65534
WARM_NICE = 10
IDLE_NICE = 19  # a ready child that replays more while it waits (`_warm_while_waiting`)
# ... once it has waited this long: a child taken as soon as it is ready (a busy server assigns it within a few ms)
# then finds no replay entry in progress when its request comes (one took 1-2 ms, up to ~15).
IDLE_AFTER_S = 0.1
# Modules jax imports lazily on the first computation (backend start, first lowering): imported once here
# instead of in every child (~25 ms each). Importing them starts no backend; `main` checks that.
PREFORK_IMPORTS = ("jax.experimental.multihost_utils", "jaxlib.mlir.dialects.builtin")
STATUS = struct.Struct("<i")
# Pipe ends in a fork command, in this order.
FD_NAMES = ("stdin", "stdout", "stderr", "result", "control")


def main() -> None:
    # nsutil too: its libc handle is loaded once here, not in every holder after its fork.
    from graders.child import harness, mlir_context, nsutil, profile_replay  # noqa: F401

    sock = socket.socket(fileno=int(os.environ.pop("GRADAX_ZYGOTE_FD")))
    cache_dir = os.environ.pop("GRADAX_JAX_CACHE_DIR", "")
    harness.import_libraries()
    if cache_dir:
        profile_replay.use_read_only_cache(cache_dir)
    for name in PREFORK_IMPORTS:
        importlib.import_module(name)
    mlir_context.share_contexts(make_now=True)  # one MLIR context, made here: every child inherits it
    _refuse_started_backend()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # holders are reaped by the kernel
    sock.send(json.dumps({"event": "ready", "pid": os.getpid()}).encode())
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 1 << 22, len(FD_NAMES))
        except OSError:
            os._exit(0)
        if not data:
            os._exit(0)  # the host closed the channel
        command = json.loads(data)
        if command.get("cmd") != "fork" or len(fds) != len(FD_NAMES):
            for fd in fds:
                os.close(fd)
            sock.send(json.dumps({"id": command.get("id"), "error": "bad command"}).encode())
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        # Everything the zygote holds moves to the collector's permanent generation: a collection in the
        # child would otherwise walk (and write to the header of) every object jax and flax left, copying
        # each inherited page; nnx-layernorm's warm run went ~200 -> ~130 ms with this and the child's own
        # (docs/performance.md). The trusted worker does not do this (a trusted run failed once with it there).
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                _holder(fds, command)
            finally:
                os._exit(70)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"id": command["id"], "pid": pid}).encode())


def _holder(fds: list[int], command: dict[str, Any]) -> None:
    from graders.child import nsutil

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    control = fds[4]
    nsutil.unshare(nsutil.CLONE_NEWNS | nsutil.CLONE_NEWPID | nsutil.CLONE_NEWNET | nsutil.CLONE_NEWIPC)
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(status_r)
            _init(fds, command, status_w)
        finally:
            os._exit(72)
    os.close(status_w)
    for fd in fds[:4]:
        os.close(fd)
    nsutil.drop_privileges(NOBODY, NOBODY)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    reported = os.read(status_r, STATUS.size + 1) if code == 0 else b""
    if len(reported) == STATUS.size:  # the grading child's own status, as its init saw it
        code = STATUS.unpack(reported)[0]
    try:
        os.write(control, b"X" + STATUS.pack(code))
    except OSError:
        pass
    os._exit(0)


def _init(fds: list[int], command: dict[str, Any], status_w: int) -> None:
    """PID 1 of the new namespace: forks the grading child (PID 2), reaps, and reports the child's wait status.

    The grading child is not the namespace's init on purpose: the kernel drops every signal an init receives from
    inside its namespace unless it has a handler (pid_namespaces(7)), so a submission that sent itself SIGKILL,
    SIGTERM, SIGSTOP or raised SIGSEGV went on running in a warm child and died in a cold sandbox, whose Python is
    not an init either. This process runs no submitted code: it holds nothing but the status pipe, drops every
    privilege, is not dumpable (the child, also `nobody`, cannot open its memory) and is under the same seccomp
    filter. Orphans of the submission are re-parented to it and reaped here; when the child ends it writes the
    child's status and exits, and the kernel kills whatever is left in the namespace.
    """
    from graders.child import nsutil

    os.setsid()  # out of the zygote's process group (see _child)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(status_w)
            _child(fds, command)
        except BaseException as exc:  # setup failed: say so on stderr; the host sees no `R`
            try:
                os.write(2, f"gradax pool child setup failed: {exc!r}\n".encode())
            finally:
                os._exit(71)
        os._exit(0)
    os.closerange(0, status_w)
    os.closerange(status_w + 1, 1 << 16)
    nsutil.drop_privileges(NOBODY, NOBODY)
    nsutil.prctl(nsutil.PR_SET_DUMPABLE, 0)
    _apply_seccomp()
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        if reaped == pid:
            break
    os.write(status_w, STATUS.pack(os.waitstatus_to_exitcode(status)))
    os._exit(0)


def _child(fds: list[int], command: dict[str, Any]) -> None:
    from graders.child import nsutil

    limits = command["limits"]
    # A session (and process group) of its own. Forked from the zygote, it would share the zygote's group
    # with every holder and every other child, all `nobody`: kill(0) or killpg from a submission reaches a
    # process group across PID namespaces, so one run could stop or kill every ready child and every run
    # graded beside it.
    os.setsid()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]  # so no dup2 below clobbers a later source
    for target, fd in enumerate(high):
        os.dup2(fd, target)  # stdin 0, stdout 1, stderr 2, results 3, control 4
    os.closerange(len(fds), 1 << 16)
    nsutil.mount(None, "/", None, nsutil.MS_REC | nsutil.MS_PRIVATE)
    flags = nsutil.MS_NOSUID | nsutil.MS_NODEV
    nsutil.mount("tmpfs", "/tmp", "tmpfs", flags,
                 f"size={int(limits['tmpfs_mb'])}m,nr_inodes=16384,mode=1777")
    if os.path.isdir("/dev/shm"):
        nsutil.mount("tmpfs", "/dev/shm", "tmpfs", flags | nsutil.MS_NOEXEC, "size=8m,nr_inodes=256,mode=1777")
    # A devpts instance of its own: the zygote's (from bwrap's --dev) is shared by every child, and two
    # submissions graded at once could talk through a pty there. /dev/ptmx is bwrap's link to pts/ptmx.
    # (Not nodev: a pty is a device node.)
    nsutil.mount("devpts", "/dev/pts", "devpts", nsutil.MS_NOSUID | nsutil.MS_NOEXEC,
                 "newinstance,ptmxmode=0666,mode=0620")
    nsutil.mount("proc", "/proc", "proc", flags | nsutil.MS_NOEXEC)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    size = int(limits["file_size_mb"]) * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    files = int(limits["open_files"])
    resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))
    nsutil.drop_privileges(NOBODY, NOBODY)
    _apply_seccomp()
    os.chdir("/tmp")
    # Warm up in the background: a child that is grading must not wait for the CPU behind one that is
    # warming. The host restores normal priority when it assigns this child a submission.
    os.nice(WARM_NICE)
    _warm(command.get("profile") or [])
    gc.freeze()  # the submission's collections need not walk what the warm-up built (as with the zygote's)
    os.write(4, b"R")
    os.close(4)
    _warm_while_waiting(command.get("extra") or [])
    _serve()


def _refuse_started_backend() -> None:
    """Fail to start (the pool then grades cold) rather than fork children that would deadlock."""
    from jax._src import xla_bridge

    if getattr(xla_bridge, "_backends", None):
        raise RuntimeError("the zygote started an XLA backend before forking; its children would deadlock")


def _apply_seccomp() -> None:
    """Install the cold harness's syscall filter; raise (setup fails, no `R`) if the kernel refuses it.

    Before the warm-up on purpose: a filter covers only the calling thread and the threads it creates
    later, and this process is still single-threaded here, so every thread the backend starts (XLA's
    pools, which also run host callbacks of submitted code) inherits it; no TSYNC needed. The cold
    harness imports and compiles under the same filter, so the warm-up needs nothing it denies.
    """
    from graders.child import seccomp

    os.environ.pop("GRADAX_SECCOMP", None)  # read only by the cold harness; not the submission's business
    program = seccomp.build_filter()
    if program is None:
        return  # no syscall table described for this machine: the other layers stand alone, as when cold
    threads = os.listdir("/proc/self/task")
    if len(threads) != 1:
        raise RuntimeError(f"seccomp must be installed while single-threaded; threads: {threads}")
    seccomp.install(program)


def _warm(profile: list[dict[str, Any]]) -> None:
    """Start the backend and fill the in-process compile caches for the problem this child will grade."""
    from graders.child import profile_replay

    profile_replay.generic_warmup()
    profile_replay.replay(profile)


def _warm_while_waiting(extra: list[dict[str, Any]]) -> dict[str, float]:
    """Once ready, replay the known mistakes' and alternatives' dispatches too (the profile's `extra`), one at a time,
    until the request arrives.

    Wrong answers are most of what students send, and a mistake's primitives and shapes that the reference never
    used were loaded from the replay cache during its run: graded ~1.5-2x slower than the reference (layernorm
    `batch-axis` 294 ms against 146). Replayed in the warm-up instead, they cost every child 1.5-3x its warm-up CPU,
    which is what bounds throughput on 2 cores (docs/performance.md). Here they cost nothing a submission waits for:
    the child is ready already, it begins only after `IDLE_AFTER_S` without a request, it stops at the entry during
    which its request came, every thread is at nice 19 (the host sets nice 0 on every thread before it writes the
    request: graders/zygote_client.py `restore_priority`), and the host stops it while any run is in progress
    (graders/pool.py `_hold_waiting`)."""
    if not extra or _request_waiting(IDLE_AFTER_S):
        return {"replayed": 0, "failed": 0, "ms": 0.0}
    from graders.child import profile_replay

    for tid in os.listdir("/proc/self/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), IDLE_NICE)
        except OSError:
            pass
    done = profile_replay.replay(extra, None, stop=_request_waiting)
    gc.freeze()  # as after the warm-up
    return done


def _request_waiting(timeout: float = 0.0) -> bool:
    readable, _, _ = select.select([0], [], [], timeout)
    return bool(readable)


def _serve() -> None:
    from graders import wire
    from graders.child import harness

    request = harness.read_request(sys.stdin.buffer)
    out = os.fdopen(3, "wb", buffering=0)
    wire.write_message(out, {"event": "ready", "pid": os.getpid(), "warm": True})
    harness.serve_and_exit(request, out)


if __name__ == "__main__":
    main()
