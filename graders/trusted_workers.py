"""Trusted worker processes: jax imported once, a fresh forked child for each trusted run.

Preparing a problem runs two kinds of trusted processes, outside any sandbox: the reference run (outputs of the
reference and the known mistakes, and the profile's recording: `graders/reference.py` `compute`) and the replay-
cache fill (`compile_profile.fill_replay_cache`: the profile replayed on zeros, no reference code loaded; ATTACKS.md
row 34). Each was a fresh `python -m graders.compile_profile ...`, paying ~1.1 CPU-s of interpreter start, jax/flax/
optax imports and backend start before doing anything: a third of a typical fill, 24 fills and 24 reference runs in
a whole-bank `gradax check` or `gradax prepare`. A third kind, the recording alone (`compile_profile.record_profile`:
a profile needed when the outputs were stored already, e.g. after a new profile format), runs here too.

A worker (`python -m graders.trusted_workers`, started with the trusted environment those processes had: XLA flags,
`PYTHONHASHSEED=0`, cwd /tmp) imports the libraries once, starts no backend, and forks one child per run, as the warm
pool's zygote does for submissions. Each run is still a fresh process: its own backend, empty in-memory jit caches (a
fill must compile every program its staging directory holds), its own environment and persistent-cache directories.
The worker itself never runs a reference or a replay; a fill's child loads nothing but the libraries and the replay,
as before.

Protocol: a SOCK_SEQPACKET socket pair, one JSON message per request, with the run's pipe ends passed as file
descriptors (SCM_RIGHTS) for a reference run; the worker answers the child's pid, then its exit status. A reference
run is supervised exactly as `sandbox.run_harness` supervises a one-shot trusted process (`supervision.supervise`
over the same pipes). One worker serves one run at a time: `TrustedWorkers` keeps the idle ones and starts another
for a run that finds none (`gradax prepare` runs one problem per core). A worker idle for `IDLE_EXIT_S` exits (it
holds ~200 MB of imported libraries). If no worker can start, or one dies before its run starts, the caller runs the
old one-shot process instead.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.supervision import ChildOutcome, ChildPipes, RunMeter, SandboxLimits, supervise

IDLE_EXIT_S = 120.0
START_TIMEOUT_S = 120.0
WORKER_FD_ENV = "GRADAX_WORKER_FD"
RESULT_FD = 3  # where a reference run's child finds its result pipe (GRADAX_RESULT_FD)
MESSAGE_BYTES = 1 << 16


@dataclass
class RunOutcome:
    """What one `run_to_files` child did (a fill, a recording: a subcommand that reads stdin and prints its result):
    its exit status (negative: killed by that signal), what it printed as its result, and its stderr."""

    status: int
    stdout: str
    stderr: str


class TrustedWorkerError(RuntimeError):
    """The worker could not start or died before its run started; a fresh process can do the run."""


class TrustedRunTimeout(RuntimeError):
    """The run did not finish in time (the worker is stopped)."""


class TrustedWorker:
    """One worker process (parent side)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen([sys.executable, "-B", "-s", "-m", "graders.trusted_workers"],
                                         env={**env, WORKER_FD_ENV: str(theirs.fileno())}, cwd="/tmp",
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
        except OSError as exc:
            self._sock.close()
            raise TrustedWorkerError(f"the trusted worker could not start: {exc}") from exc
        finally:
            theirs.close()
        if self._receive(START_TIMEOUT_S) != {"ready": True}:
            self.kill()
            raise TrustedWorkerError("the trusted worker did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run_to_files(self, command: str, run_env: dict[str, str], stdin: bytes, scratch: Path,
                     timeout_s: float) -> RunOutcome:
        """`graders.compile_profile <command>` (one that reads its request on stdin and prints its result: `record`,
        `replay`)
        in a fresh child with `run_env` added, `stdin` fed from a file and its outputs written to files in
        `scratch`; its exit status and outputs."""
        source, out, err = scratch / "stdin", scratch / "stdout", scratch / "stderr"
        source.write_bytes(stdin)
        fds: list[int] = []
        try:
            fds.append(os.open(source, os.O_RDONLY))
            for path in (out, err):
                fds.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
            fds.append(os.open(os.devnull, os.O_WRONLY))  # the result pipe of the harness's protocol: unused here
            pid = self.start_run(command, run_env, fds)
        finally:
            for fd in fds:
                os.close(fd)
        status = self._finish(timeout_s, f"`{command}`", session=pid)
        return RunOutcome(status, out.read_text("utf-8", "replace"), _read_text(err))

    def _finish(self, timeout_s: float, what: str, session: int | None = None) -> int:
        """The running child's exit status. Past `timeout_s`, the child (and its own `session`, which stopping the
        worker misses: `_run_child` makes one) and the worker are stopped: TrustedRunTimeout if the run itself hung
        (a fresh process would too), TrustedWorkerError if the worker died under it (a fresh process may do it)."""
        status = self.wait(timeout_s)
        if status is not None:
            return status
        hung = self.alive()
        if session is not None:
            try:
                os.killpg(session, signal.SIGKILL)
            except OSError:
                pass
        self.kill()
        if hung:
            raise TrustedRunTimeout(f"{what} took more than {timeout_s:g} s")
        raise TrustedWorkerError(f"the trusted worker died during {what}")

    def start_run(self, command: str, env: dict[str, str], fds: list[int]) -> int:
        """Start `graders.compile_profile <command>` in a fresh child with `env` added and `fds` as its stdin,
        stdout, stderr and result pipe; its pid (a session leader: `os.killpg(pid, ...)` stops it)."""
        return self._start({"kind": "run", "command": command, "env": env}, fds)

    def wait(self, timeout_s: float | None) -> int | None:
        """The running child's exit status, or None if not known within `timeout_s` (None: wait for it) or the
        worker is gone."""
        answer = self._receive(timeout_s)
        return answer["status"] if isinstance(answer, dict) and isinstance(answer.get("status"), int) else None

    def _start(self, request: dict[str, Any], fds: list[int]) -> int:
        try:
            socket.send_fds(self._sock, [json.dumps(request).encode()], fds)
        except OSError as exc:
            self.kill()
            raise TrustedWorkerError(f"the trusted worker is gone: {exc}") from exc
        answer = self._receive(START_TIMEOUT_S)
        if not isinstance(answer, dict) or not isinstance(answer.get("pid"), int):
            self.kill()
            raise TrustedWorkerError("the trusted worker did not start the run")
        return int(answer["pid"])

    def _receive(self, timeout_s: float | None) -> Any:
        """One message from the worker, or None on a timeout, its exit or anything unreadable."""
        try:
            if not select.select([self._sock], [], [], timeout_s)[0]:
                return None
            data = self._sock.recv(MESSAGE_BYTES)
            return json.loads(data) if data else None
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """Stop the worker and any child of it (one session: its process group; a reference run's child has a
        session of its own, which the caller stops)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self._sock.close()


class TrustedWorkers:
    """Idle workers, reused; a run that finds none starts one."""

    def __init__(self) -> None:
        self._idle: list[TrustedWorker] = []
        self._lock = threading.Lock()
        # A process forked from this one (a prefork server or task queue) must not talk to this one's workers:
        # two processes on one worker's socket would mix their runs. It starts workers of its own.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._idle = []
        self._lock = threading.Lock()

    def take(self, env: dict[str, str]) -> TrustedWorker:
        """An idle worker started with `env` (others are stopped), or a new one; give it back with `give_back`."""
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive() and worker.env == env:
                    return worker
                worker.kill()
        return TrustedWorker(env)

    def give_back(self, worker: TrustedWorker) -> None:
        with self._lock:
            self._idle.append(worker)

    def run_to_files(self, env: dict[str, str], command: str, run_env: dict[str, str], stdin: bytes, scratch: Path,
                     timeout_s: float) -> RunOutcome:
        """`TrustedWorker.run_to_files` in an idle worker started with `env` (or a new one), given back after, stopped
        if the run raised (it timed out, or the worker died)."""
        worker = self.take(env)
        try:
            outcome = worker.run_to_files(command, run_env, stdin, scratch, timeout_s)
        except BaseException:
            worker.kill()
            raise
        self.give_back(worker)
        return outcome

    def run(self, env: dict[str, str], command: str, run_env: dict[str, str], request: bytes,
            limits: SandboxLimits) -> ChildOutcome:
        """`graders.compile_profile <command>` (it speaks the harness's protocol) fed `request`, supervised as
        `sandbox.run_harness` supervises a trusted one-shot process. Raises TrustedWorkerError if it could not
        start (the caller runs it in a process of its own)."""
        worker = self.take(env)
        pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, results
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
        ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
        try:
            pid = worker.start_run(command, run_env, theirs)
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            # Each closed once: the worker holds its own copies now (or never will), and a second close could hit
            # a descriptor another thread has opened since under the same number.
            for fd in theirs:
                os.close(fd)
        stdin, stdout, stderr = (os.fdopen(pipes[0][1], "wb"), os.fdopen(pipes[1][0], "rb"),
                                 os.fdopen(pipes[2][0], "rb"))
        outcome = ChildOutcome(sandboxed=False)
        meter = RunMeter.of_process(pid)
        status: list[int | None] = []

        def exit_code(timeout: float | None) -> int | None:
            if not status:
                code = worker.wait(timeout)
                if code is None and timeout is not None and worker.alive():
                    return None  # not yet
                status.append(code if code is not None else -int(signal.SIGKILL))
            return status[0]

        def kill() -> None:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass

        try:
            child_pipes = ChildPipes(stdin=stdin, stdout=stdout, stderr=stderr, result_fd=pipes[3][0],
                                     request=request, limits=limits, cpu=meter.cpu)
            supervise(child_pipes, meter, limits, outcome, startup_s=limits.startup_s, exit_code=exit_code,
                      kill=kill)
        except BaseException:
            kill()
            worker.kill()
            raise
        finally:
            for stream in (stdout, stderr):
                try:
                    stream.close()
                except OSError:
                    pass
        if status and worker.alive():
            self.give_back(worker)
        else:
            worker.kill()
        return outcome

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


WORKERS = TrustedWorkers()  # this process's workers (graders/compile_profile.py fills, graders/reference.py runs)
atexit.register(WORKERS.close)  # stopped and waited for: not left behind a CLI run


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")[-64 * 1024:]
    except OSError:
        return ""


# --- the worker (trusted, unsandboxed) ---------------------------------------------------------------------------


def _run_child(request: dict[str, Any], fds: list[int]) -> None:
    """In a forked child: become `python -m graders.compile_profile <command>` on the passed pipes; never returns."""
    status = 1
    try:
        os.setsid()  # its own session: the parent stops it (and anything it started) with one killpg
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in fds]  # above 0-3, which the dup2s below take
        for fd in fds:
            os.close(fd)
        for target, fd in zip((0, 1, 2, RESULT_FD), high, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.update(request["env"])
        os.environ["GRADAX_RESULT_FD"] = str(RESULT_FD)
        from graders import compile_profile

        compile_profile.SUBCOMMANDS[request["command"]]()
        status = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(status)


def _serve() -> None:
    from graders.child import harness, mlir_context

    sock = socket.socket(fileno=int(os.environ.pop(WORKER_FD_ENV)))
    harness.import_libraries()  # imports only: the backend starts in each child
    mlir_context.share_contexts(make_now=True)  # one MLIR context, made once: every child inherits it
    import graders.compile_profile  # noqa: F401  # what a reference run's child runs, imported once here
    sock.send(json.dumps({"ready": True}).encode())
    while True:
        if not select.select([sock], [], [], IDLE_EXIT_S)[0]:
            return  # idle: the parent starts another worker when it needs one
        data, fds, _, _ = socket.recv_fds(sock, MESSAGE_BYTES, 4)
        if not data:
            return  # the parent is gone
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _run_child(request, fds)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        _, wait_status = os.waitpid(pid, 0)
        sock.send(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}).encode())


if __name__ == "__main__":
    _serve()
