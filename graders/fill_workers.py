"""Trusted processes that fill the replay cache, with jax imported once instead of once per fill.

A fill (`compile_profile.fill_replay_cache`) replays a profile on zeros in a trusted process of its own and
publishes what it compiled. As a fresh `python -m graders.compile_profile replay`, each fill paid ~1.1 CPU-s of
interpreter start, jax/flax/optax imports and backend start before replaying anything: about a third of a typical
fill, 24 times in a whole-bank `gradax check` or `gradax prepare`.

A fill worker (`python -m graders.fill_workers`) imports the libraries once, starts no backend, and forks one child
per fill, as the warm pool's zygote does for submissions. Each fill still runs in a fresh process: its own backend,
empty in-memory jit caches (a program compiled by an earlier fill in the same process would not be compiled again,
so it would be missing from this fill's staging directory and keys), its own persistent-cache directories. The
worker loads no reference code and runs nothing but `generic_warmup` and `replay`, as the one-shot fill did.

Protocol, one line of JSON each way per fill on the worker's stdin/stdout: the request names the profile's entries,
the staging directory the child compiles into, the directories it may read, and two files for the child's result
and its stderr; the answer is the child's exit status. A worker that has nothing to do for `IDLE_EXIT_S` exits (it
holds ~200 MB of imported libraries); the parent starts another when needed. One worker serves one fill at a time:
`FillWorkers` keeps the idle ones and starts another for a fill that finds none (`gradax prepare` fills one problem
per core at once).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

IDLE_EXIT_S = 120.0
START_TIMEOUT_S = 120.0


@dataclass
class FillOutcome:
    """What one fill's child did: its exit status (negative: killed by that signal), what it printed as its
    result, and its stderr."""

    status: int
    stdout: str
    stderr: str


class FillWorkerError(RuntimeError):
    """The worker could not start or died (not a failed replay: that is a status); a fresh process can fill."""


class FillTimeout(RuntimeError):
    """The fill did not finish in time (the worker is stopped)."""


class FillWorker:
    """One worker process (parent side)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        try:
            self.proc = subprocess.Popen([sys.executable, "-B", "-s", "-m", "graders.fill_workers"], env=env,
                                         cwd="/tmp", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise FillWorkerError(f"the fill worker could not start: {exc}") from exc
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in: IO[bytes] = self.proc.stdin
        self._out: IO[bytes] = self.proc.stdout
        if self._read_line(START_TIMEOUT_S) != {"ready": True}:
            self.kill()
            raise FillWorkerError("the fill worker did not start")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def fill(self, entries: list[dict[str, Any]], write_dir: Path, read_dirs: list[Path], scratch: Path,
             timeout_s: float) -> FillOutcome:
        out, err = scratch / "fill.out", scratch / "fill.err"
        request = {"entries": entries, "write": str(write_dir), "read": [str(d) for d in read_dirs],
                   "out": str(out), "err": str(err)}
        try:
            self._in.write(json.dumps(request).encode() + b"\n")
            self._in.flush()
        except OSError as exc:
            self.kill()
            raise FillWorkerError(f"the fill worker is gone: {exc}") from exc
        answer = self._read_line(timeout_s)
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), int):
            hung = self.alive()
            self.kill()
            if hung:  # the replay itself took too long: a fresh process would too
                raise FillTimeout(f"replaying the profile took more than {timeout_s:g} s")
            raise FillWorkerError("the fill worker died during a fill")
        return FillOutcome(answer["status"], _read_text(out), _read_text(err))

    def _read_line(self, timeout_s: float) -> Any:
        """One JSON line from the worker, or None on a timeout, an exit or anything unreadable."""
        line = b""
        deadline = time.monotonic() + timeout_s
        fd = self._out.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            line += chunk
            if len(line) > 1 << 20:
                return None
        try:
            return json.loads(line)
        except ValueError:
            return None

    def kill(self) -> None:
        """Stop the worker and any fill child of it (one session: its process group)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        for stream in (self._in, self._out):
            try:
                stream.close()
            except OSError:
                pass


class FillWorkers:
    """Idle workers, reused; a fill that finds none starts one."""

    def __init__(self) -> None:
        self._idle: list[FillWorker] = []
        self._lock = threading.Lock()
        # A process forked from this one (a prefork server or task queue) must not write to this one's workers:
        # two writers on a worker's request pipe would mix their fills. It starts workers of its own.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._idle = []
        self._lock = threading.Lock()

    def fill(self, env: dict[str, str], entries: list[dict[str, Any]], write_dir: Path, read_dirs: list[Path],
             scratch: Path, timeout_s: float) -> FillOutcome:
        """Run one fill in a worker started with `env` (a worker started with another env is not reused)."""
        worker = self._take(env)
        try:
            outcome = worker.fill(entries, write_dir, read_dirs, scratch, timeout_s)
        except BaseException:
            worker.kill()
            raise
        with self._lock:
            self._idle.append(worker)
        return outcome

    def _take(self, env: dict[str, str]) -> FillWorker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive() and worker.env == env:
                    return worker
                worker.kill()
        return FillWorker(env)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


def _read_text(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")[-64 * 1024:]
    except OSError:
        return ""


# --- the worker (trusted, unsandboxed) ---------------------------------------------------------------------------


def _fill_child(request: dict[str, Any]) -> None:
    """In the forked child: compile the profile's replay into the staging directory; never returns."""
    status = 1
    try:
        fd = os.open(request["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 2)
        os.dup2(fd, 1)  # nothing may reach the worker's answer pipe
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        from graders.child.profile_replay import generic_warmup, replay
        from graders.trusted_cache import use_cache

        cache = use_cache(Path(request["write"]), [Path(p) for p in request["read"]])
        generic_warmup()
        stats = replay(request["entries"])
        Path(request["out"]).write_text(json.dumps({"replay": stats, "compiled": cache.compiled,
                                                    "reused": cache.reused}))
        status = 0
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(status)


def _serve() -> None:
    from graders.child import harness

    harness.import_libraries()  # imports only: the backend starts in each child
    answers = sys.stdout.buffer
    answers.write(json.dumps({"ready": True}).encode() + b"\n")
    answers.flush()
    requests = sys.stdin.buffer
    while True:
        if not select.select([requests.fileno()], [], [], IDLE_EXIT_S)[0]:
            return  # idle: the parent starts another worker when it needs one
        line = requests.readline()
        if not line:
            return  # the parent is gone
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _fill_child(request)
        _, wait_status = os.waitpid(pid, 0)
        answers.write(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    _serve()
