"""Supervising one child run, cold (graders/sandbox.py) or warm (graders/zygote_client.py): one loop for both.

A run's limits (`SandboxLimits`) and what the parent observed of it (`ChildOutcome`); the parent's ends of
the child's pipes, each read by a thread of its own (`ChildPipes`: stdout and stderr drained and capped, the
result channel decoded in one capped pass by graders/wire.py and validated by graders/child_events.py); and
`supervise`, which judges CPU time against the run's cgroup, keeps the wall-clock backstop, kills the group
and collects the logs. Every byte from the child is hostile input; the readers never die silently.
"""

from __future__ import annotations

import array
import dataclasses
import fcntl
import logging
import os
import queue
import select
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from graders import cgroup, run_activity, wire
from graders.child_events import ChildMessage, ResultChannel, TestError, TestOk, TestRejected

log = logging.getLogger("gradax.sandbox")


def default_pids() -> int:
    return 64 + 2 * (os.cpu_count() or 1)


# Time limits judge the submission's own CPU time. The wall clock is only a backstop for runs that do not
# use CPU (sleeping, blocking): it stops a run after WALL_FACTOR x its CPU limit, not counting the time
# the run waited for a CPU on a busy machine (the kernel's run-queue delay), and in any case after
# WALL_CAP_FACTOR x its CPU limit. So load never turns a correct answer into a time limit, and a sleeper
# still holds a grading slot for at most WALL_FACTOR x the limit on an idle machine. A run the cap stops
# because it waited that long for a CPU is not judged at all (`SandboxLimits.starved`): the machine failed it.
WALL_FACTOR = 3.0
WALL_CAP_FACTOR = 10.0
# A read this small means the pipe was nearly empty: pause before the next one, so a child that trickles
# bytes (or prints one character at a time) costs the parent at most ~1000 reads a second, not one per write.
SMALL_READ = 4096
READ_PAUSE_S = 0.001


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run. Time counts from the moment the child says `ready` (libraries imported)."""

    time_s: float = 10.0  # CPU seconds of the whole group (every thread and process of the run)
    wall_s: float | None = None  # wall-clock backstop, CPU waits excluded; default WALL_FACTOR x time_s
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
    def wall_limit(self) -> float:
        return self.wall_s if self.wall_s is not None else WALL_FACTOR * self.time_s

    @property
    def wall_cap(self) -> float:
        """The longest a run may take after `ready`, however busy the machine."""
        return max(self.wall_limit, WALL_CAP_FACTOR * self.time_s)

    def starved(self, waited_s: float) -> bool:
        """Whether a run stopped by the clock after waiting `waited_s` for a CPU was stopped by the machine: the
        cap cut it short, and without the waiting it would still have had a tenth of its backstop left. A
        submission cannot get there on its own: sleeping is no waiting, and its own threads waiting for each
        other burn its CPU time on every core at once (on 2 cores, at most half its CPU limit of waiting)."""
        return waited_s >= max(self.wall_cap - self.wall_limit, 0.0) + 0.1 * self.wall_limit


@dataclass
class ChildOutcome:
    """Everything the parent observed about one child run; judging it is the engine's job.

    `messages` holds only validated events (graders/child_events.py); `wire_error` says why the channel was
    cut (bytes that are not messages, or events that break the schema or the order).
    """

    messages: list[ChildMessage] = field(default_factory=list)
    wire_error: str | None = None
    stdout: bytes = b""
    stdout_total: int = 0
    stderr: bytes = b""
    stderr_total: int = 0
    # A request that held its hidden tests back (graders/request.py): whether their inputs were sent, and what the
    # child printed from then on, counted only: `stdout` and `stderr` (and their totals) are what came before.
    held_back_sent: bool = False
    hidden_log_bytes: int = 0
    # The run's memory peak when the hidden tests' inputs were sent (what it allocated after could encode them).
    memory_peak_at_seal: int | None = None
    exit_code: int | None = None
    timed_out: bool = False  # the wall-clock backstop stopped the run
    starved: bool = False  # ... at its cap, after waiting for a CPU most of the time: the machine's doing
    startup_timed_out: bool = False
    cpu_exceeded: bool = False  # the run used more CPU time than its limit
    memory_exceeded: bool = False
    memory_limit_reached: bool = False  # usage touched the limit at some point (memory.failcnt > 0)
    result_overflow: bool = False
    start_error: str | None = None
    reader_error: str | None = None  # the parent failed to read the channel: a bug in gradax
    ready_ms: float | None = None
    run_ms: float | None = None
    cpu_seconds: float | None = None  # the group's CPU time over the whole run, start-up included
    cpu_at_ready: float | None = None  # the group's CPU time when the child said ready
    cpu_wait_s: float | None = None  # how long the run waited for a CPU (not counted against the backstop)
    memory_peak: int | None = None
    result_bytes: int = 0  # bytes received on the result channel
    parent_cpu_s: float = 0.0  # CPU time the parent's reader threads spent on this child's pipes
    sandboxed: bool = True

    def shown_memory_peak(self) -> int | None:
        """The memory peak a report may show: once the hidden tests' inputs were sent, the peak up to then (how much
        a hidden test allocated is the submission's to choose, from an input), unless the run reached its limit
        (then the peak is the limit, whichever test reached it)."""
        if self.held_back_sent and not (self.memory_exceeded or self.memory_limit_reached):
            return self.memory_peak_at_seal
        return self.memory_peak

    def events(self, name: str) -> list[ChildMessage]:
        return [m for m in self.messages if m.kind == name]

    @property
    def run_cpu_s(self) -> float | None:
        """CPU seconds the run used after `ready`: what the time limit judges."""
        if self.cpu_seconds is None or self.cpu_at_ready is None:
            return None
        return max(0.0, self.cpu_seconds - self.cpu_at_ready)


class ReaderCost:
    """CPU time the parent's reader threads spend on one child (each thread measures its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds


def _read(stream: IO[bytes]) -> bytes:
    # One read of what the pipe holds (read1 on a buffered stream: its read(n) would wait for n bytes).
    read = getattr(stream, "read1", None) or stream.read
    chunk = read(65536)
    if chunk is not None and 0 < len(chunk) < SMALL_READ:
        time.sleep(READ_PAUSE_S)
    return chunk or b""


class LogSink:
    """What the parent keeps of one log pipe (stdout or stderr): the first `keep` bytes and the count. Once sealed
    (the hidden tests' inputs are about to be sent), only a count of what follows, which is never shown."""

    def __init__(self, keep: int):
        self._lock = threading.Lock()
        # Held by the pipe's reader from a read to its count, and by the cut while it looks at the pipe: what was
        # read is counted before the cut sees the pipe empty (see ChildPipes._on_message).
        self.turn = threading.Lock()
        self._keep = keep
        self._chunks: list[bytes] = []
        self._kept = 0
        self.total = 0
        self.hidden = 0
        self._sealed = False

    def add(self, chunk: bytes) -> None:
        with self._lock:
            if self._sealed:
                self.hidden += len(chunk)
                return
            self.total += len(chunk)
            if self._kept < self._keep:
                self._chunks.append(chunk[: self._keep - self._kept])
                self._kept += len(self._chunks[-1])

    def seal(self) -> None:
        with self._lock:
            self._sealed = True

    def kept(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)


def _reader(stream: IO[bytes], sink: LogSink, key: str, cost: ReaderCost | None = None) -> None:
    """Drain stdout or stderr into `sink` to the end of the pipe. Never raises.

    It waits until the pipe holds something (or is closed), then reads and counts under the sink's `turn`: a byte
    is either in the pipe or counted, never in between, which is what makes the cut before the hidden tests exact.
    It reads the descriptor itself (a buffered stream could hold bytes out of the pipe's count)."""
    started = time.thread_time()
    try:
        fd = stream.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        while True:
            poller.poll()
            with sink.turn:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                sink.add(chunk)
            if len(chunk) < SMALL_READ:
                time.sleep(READ_PAUSE_S)  # a trickle of small writes is taken in fewer, larger reads
    except Exception:  # the pipe broke: what was read so far still counts
        log.exception("reading the child's %s failed", key)
    finally:
        if cost is not None:
            cost.add(time.thread_time() - started)


def _pending(stream: IO[bytes]) -> int:
    """Bytes waiting in a pipe (FIONREAD), 0 when that cannot be read."""
    try:
        buf = array.array("i", [0])
        fcntl.ioctl(stream.fileno(), termios.FIONREAD, buf, True)
        return int(buf[0])
    except (OSError, ValueError):
        return 0


def _results_reader(fd: int, channel: ResultChannel, out: queue.Queue[Any], cost: ReaderCost | None = None,
                    cpu: Callable[[], float] | None = None, on_message: Callable[[ChildMessage], None] | None = None,
                    redact: Callable[[str], str] | None = None) -> None:
    """Decode and validate result events as they arrive; stop at EOF, overflow or a violation.

    Never dies silently: whatever happens, the watcher gets a final `eof`, `overflow` or `garbage`, so a
    broken channel ends the run at once instead of waiting for the time limit.
    """
    started = time.thread_time()
    stream = os.fdopen(fd, "rb", buffering=0)
    final: tuple[str, Any] = ("eof", None)
    try:
        while True:
            try:
                chunk = _read(stream)
            except OSError:
                chunk = b""
            if not chunk:
                break
            try:
                for message in channel.feed(chunk):
                    if cpu is not None and message.kind == "ready":
                        # Sampled here, at once: the watcher may get to the event only after a short run ended
                        # (a loaded parent), and its baseline would then swallow the run's CPU time.
                        message = dataclasses.replace(message, cpu_at=cpu())
                    out.put(("message", message))
                    if on_message is not None:
                        on_message(message)
            except wire.BudgetExceeded as exc:
                final = ("overflow", str(exc))
                break
            except wire.WireError as exc:
                # Events decoded before the violation in the same read still count: a submission that
                # writes junk on the result pipe right after the child said `ready` (the warm pool's child
                # says it just before loading the code) is the submission's fault, not a failed start.
                for message in exc.messages:
                    out.put(("message", message))
                final = ("garbage", redact(str(exc)) if redact is not None else str(exc))
                break
    except Exception as exc:  # a bug in gradax (hostile bytes raise WireError): end the run, blame gradax
        log.exception("the result reader failed")
        final = ("reader_failed", f"{type(exc).__name__}: {exc}"[:500])
    # Tell the watcher first (it stops the run), then drain until the child is gone so it never blocks.
    out.put(final)
    try:
        if final[0] != "eof":
            _drain(stream)
    finally:
        stream.close()
        if cost is not None:
            cost.add(time.thread_time() - started)


def _drain(stream: IO[bytes]) -> None:
    try:
        while _read(stream):
            pass
    except OSError:
        pass


def finish_group(group: cgroup.RunCgroup, outcome: ChildOutcome) -> None:
    """Read what the run's cgroup measured into the outcome, then kill what is left and remove the group.

    Shared by the cold sandbox and the warm pool, so both judge memory the same way: a run stopped by time
    while pinned at its limit counts as memory_limit_exceeded (see `memory_limit_reached`).
    """
    read_group(group, outcome)
    group.remove()


def read_group(group: cgroup.RunCgroup, outcome: ChildOutcome) -> None:
    """What the run's cgroup measured, into the outcome (`finish_group` without the removal)."""
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


class ChildPipes:
    """The parent's ends of one child's pipes, each read by a thread of its own that never raises.

    Shared by the cold sandbox and the warm pool: stdout and stderr are drained and capped, the result pipe
    is decoded and validated (graders/child_events.py) into `events`, the request is written to stdin.

    A request that holds its hidden tests back (graders/request.py) is written in two parts: the first at once;
    the second, the hidden tests' inputs, once the child has reported the tests before them. At that moment the
    logs are sealed: what the child printed before is kept to show, what it prints after (when it may hold a
    hidden input) is only counted. Every byte printed before the inputs were sent is either kept or, if still in
    the pipe at the cut, counted as after it; none printed after can be kept.
    """

    SETTLE_S = 0.2  # at most this long for the logs' pipes to be read empty before the cut

    def __init__(self, *, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[bytes], result_fd: int,
                 request: bytes, limits: SandboxLimits, cpu: Callable[[], float] | None = None,
                 memory_peak: Callable[[], int] | None = None):
        self.events: queue.Queue[Any] = queue.Queue()
        self.cost = ReaderCost()
        header = wire.peek_header(request)
        self.channel = ResultChannel.for_request(header, limits.result_bytes)
        self.held_back = int(header.get("sealed", 0))
        self.shown_tests = len(header["tests"])
        first = wire.message_length(request) if self.held_back else len(request)
        self.sinks = {"stdout": LogSink(limits.log_bytes), "stderr": LogSink(limits.log_bytes)}
        self._streams = (stdout, stderr)
        self._release = threading.Event()
        self.held_back_sent = False
        self.result_bytes_at_seal = 0
        self._memory_peak = memory_peak  # the run's cgroup's, read at the cut
        self.memory_peak_at_seal: int | None = None
        self.threads = [
            threading.Thread(target=_reader, args=(stdout, self.sinks["stdout"], "stdout", self.cost),
                             daemon=True, name="gradax-stdout"),
            threading.Thread(target=_reader, args=(stderr, self.sinks["stderr"], "stderr", self.cost),
                             daemon=True, name="gradax-stderr"),
            threading.Thread(target=_results_reader, args=(result_fd, self.channel, self.events, self.cost, cpu,
                                                           self._on_message if self.held_back else None,
                                                           self._redact),
                             daemon=True, name="gradax-results"),
            threading.Thread(target=self._feed, args=(stdin, request[:first], request[first:]), daemon=True,
                             name="gradax-stdin"),
        ]
        for t in self.threads:
            t.start()

    def _feed(self, stdin: IO[bytes], first: bytes, rest: bytes) -> None:
        try:
            stdin.write(first)
            stdin.flush()  # a buffered pipe (the cold sandbox's) would hold it until closed
            if rest:
                self._release.wait()
                if self.held_back_sent:
                    stdin.write(rest)
                    stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _on_message(self, message: ChildMessage) -> None:
        """Called by the results reader with each event: after the last test before the hidden ones, seal the logs
        and send the hidden tests."""
        if self._release.is_set():
            return
        event = message.event
        if not (isinstance(event, TestOk | TestError | TestRejected) and event.index == self.shown_tests - 1):
            return
        # The child flushed its prints before this event: let the log readers take them off the pipes first. With
        # both readers' turns held, a pipe read empty means every byte written before is counted (`_reader`).
        stdout, stderr = self.sinks["stdout"], self.sinks["stderr"]
        deadline = time.monotonic() + self.SETTLE_S
        while True:
            with stdout.turn, stderr.turn:
                if not any(_pending(s) for s in self._streams) or time.monotonic() >= deadline:
                    stdout.seal()  # a byte still in a pipe at the deadline counts as after the cut
                    stderr.seal()
                    break
            time.sleep(0.001)
        self.result_bytes_at_seal = self.channel.decoder.total
        if self._memory_peak is not None:
            try:
                self.memory_peak_at_seal = self._memory_peak()
            except (OSError, ValueError):  # the group is gone or says nothing readable: no peak is shown
                log.warning("the run's memory peak could not be read at the cut", exc_info=True)
        self.held_back_sent = True
        self._release.set()

    def _redact(self, detail: str) -> str:
        """What the channel's refusal may say: after the hidden tests' inputs were sent, nothing the child wrote."""
        if self.held_back_sent:
            return "a message that is not one of the grader's, written during the hidden tests"
        return detail

    def finish(self, outcome: ChildOutcome, timeout: float = 2.0) -> bool:
        """After the child is gone (or has closed its pipes): wait up to `timeout` for each log reader, then record
        what they and the channel saw. Whether every reader reached the end of its pipe."""
        self._release.set()  # a child that never reached the hidden tests gets no more input
        for t in self.threads[:3]:
            t.join(timeout=timeout)
        stdout, stderr = self.sinks["stdout"], self.sinks["stderr"]
        outcome.stdout, outcome.stdout_total = stdout.kept(), stdout.total
        outcome.stderr, outcome.stderr_total = stderr.kept(), stderr.total
        outcome.held_back_sent = self.held_back_sent
        outcome.memory_peak_at_seal = self.memory_peak_at_seal
        outcome.hidden_log_bytes = stdout.hidden + stderr.hidden
        outcome.result_bytes = self.channel.decoder.total
        if self.held_back_sent:
            # How much the hidden tests returned, to the MiB: the exact count is the submission's to choose.
            after = outcome.result_bytes - self.result_bytes_at_seal
            outcome.result_bytes = self.result_bytes_at_seal + after // 2**20 * 2**20
        outcome.parent_cpu_s = self.cost.seconds
        return not any(t.is_alive() for t in self.threads[:3])


def supervise(pipes: ChildPipes, meter: RunMeter, limits: SandboxLimits, outcome: ChildOutcome, *,
              startup_s: float, exit_code: Callable[[float | None], int | None], kill: Callable[[], None],
              alone: Callable[[], bool] | None = None) -> bool:
    """Watch one child run to its end: the supervision loop of the cold sandbox and the warm pool alike.

    Events and limits as `watch_events` judges them; then a child that finished normally gets a moment to
    exit on its own, whatever is left is killed (`kill`: the whole group), and the logs are collected.
    `exit_code(timeout)` is the child's exit status, or None if it is not known within `timeout` seconds
    (None: as long as the child needs once killed).

    With `alone` (the warm pool), a child that sent `done` and closed its pipes (the harness does, just before it
    exits), whose group holds nothing but itself (`alone()`), is not waited for: its outcome is complete, and
    the ~30 ms the kernel takes to tear a jax process down are no part of the grading. Returns True then, and the
    caller kills the group and reaps the child afterwards; False when this function did.
    """
    ready_at = watch_events(pipes.events, limits, meter, outcome, startup_s=startup_s)
    if ready_at is not None:
        outcome.run_ms = (time.monotonic() - ready_at) * 1000
    if alone is not None and _finished_cleanly(outcome) and pipes.finish(outcome, timeout=0.05) and alone():
        return True
    if not (outcome.timed_out or outcome.cpu_exceeded):
        outcome.exit_code = exit_code(0.5)
    kill()
    if outcome.exit_code is None:
        outcome.exit_code = exit_code(None)
    pipes.finish(outcome)
    return False


def _finished_cleanly(outcome: ChildOutcome) -> bool:
    """The child sent `done` and no limit, channel or reader fault marks the run."""
    return bool(outcome.events("done")) and not (
        outcome.timed_out or outcome.startup_timed_out or outcome.cpu_exceeded or outcome.memory_exceeded
        or outcome.result_overflow or outcome.wire_error or outcome.reader_error or outcome.start_error)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class RunMeter:
    """What the watcher measures of a running child: its CPU time and how long it waited for a CPU.

    The waiting comes from the kernel's per-thread run-queue delay (/proc/<pid>/task/<tid>/schedstat, the
    second number): time a thread was ready to run but another held the CPU. A busy machine shows up
    there, a sleeping submission does not, which is how the wall-clock backstop tells them apart.

    A run's critical path moves between threads (jax compiles on one while the main thread blocks on it;
    its pool's threads take turns), so no single thread's total is the run's waiting: a compile-heavy
    answer among 8 busy loops waited ~10 s and its most delayed thread showed 7.7. The watcher samples
    every SAMPLE_S and adds up each interval's largest increase. That is at least any one thread's total
    and at most the time elapsed (no thread waits longer than an interval), so a run cannot claim more
    waiting than it was running, and one that sleeps claims none.
    """

    SAMPLE_S = 0.2

    def __init__(self, cpu: Callable[[], float], delays: Callable[[], dict[int, int]]):
        self._cpu = cpu
        self._delays = delays
        self._last: dict[int, int] = {}
        self._waited_ns = 0
        self._sampled_at = 0.0

    @classmethod
    def of_group(cls, group: cgroup.RunCgroup) -> RunMeter:
        def cpu() -> float:
            try:
                return group.cpu_seconds()
            except OSError:
                return 0.0

        def pids() -> list[int]:
            try:
                return group.pids()
            except OSError:
                return []

        return cls(cpu, lambda: _thread_delays(pids()))

    @classmethod
    def of_process(cls, pid: int) -> RunMeter:
        """Unsandboxed runs of trusted code, which have no cgroup (the harness does not fork)."""

        def cpu() -> float:
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    fields = fh.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                return 0.0
            # After the command name: utime, stime, cutime, cstime are fields 14-17 of proc(5).
            return sum(int(x) for x in fields[11:15]) / _CLOCK_TICKS

        return cls(cpu, lambda: _thread_delays([pid]))

    def cpu(self) -> float:
        return self._cpu()

    def mark(self) -> None:
        """Start counting from each thread's run-queue delay so far (called when the child says ready)."""
        self._last = self._delays()
        self._waited_ns = 0
        self._sampled_at = time.monotonic()

    def sample(self) -> None:
        """Add the largest increase of any thread's delay since the last sample (a new thread: all of it; a thread
        id the kernel gave again to a new thread can read lower than before, which adds nothing)."""
        delays = self._delays()
        self._waited_ns += max(0, max((d - self._last.get(tid, 0) for tid, d in delays.items()), default=0))
        self._last = delays
        self._sampled_at = time.monotonic()

    def sample_if_due(self, now: float) -> None:
        """`sample` if SAMPLE_S have passed since the last one (the watcher calls this on every tick)."""
        if now - self._sampled_at >= self.SAMPLE_S:
            self.sample()

    def waited_so_far(self) -> float:
        """Seconds the run waited for a CPU since `mark`, as of the last sample."""
        return self._waited_ns / 1e9

    def waited(self) -> float:
        """Seconds the run waited for a CPU since `mark`, as of now."""
        self.sample()
        return self._waited_ns / 1e9


def _thread_delays(pids: list[int]) -> dict[int, int]:
    """Each thread's run-queue delay so far (ns), by thread id, for every thread of these processes."""
    delays: dict[int, int] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as fh:
                    delays[int(tid)] = int(fh.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return delays


def watch_events(events: queue.Queue[Any], limits: SandboxLimits, meter: RunMeter, outcome: ChildOutcome, *,
                 startup_s: float) -> float | None:
    """Collect a child's result events until it is done, fails, or passes a limit.

    Before `ready` only the start-up deadline counts. After it, the run's CPU time (`meter`: its cgroup's,
    or the process's when unsandboxed) is judged against `time_s`; the clock is only a backstop, at
    `wall_limit` plus the time the run waited for a CPU (see WALL_FACTOR), never past `wall_cap`. Returns
    when the child said ready (monotonic time), or None if it never did. Shared by the cold sandbox and
    the warm pool so both judge limits the same way.
    """
    started = time.monotonic()
    ready_at: float | None = None
    cpu_at_ready = 0.0
    deadline = started + startup_s
    finished = False
    # Reported while the run lasts (graders/run_activity.py): a run that neither uses nor waits for a CPU lets
    # the in-process dispatcher grade another attempt beside it.
    activity: run_activity.RunActivity | None = None
    try:
        while not finished:
            timeout = max(0.0, min(deadline - time.monotonic(), 0.05))
            try:
                kind, payload = events.get(timeout=timeout)
            except queue.Empty:
                kind, payload = "tick", None
            if kind == "message":
                message: ChildMessage = payload
                outcome.messages.append(message)
                if message.kind == "ready" and ready_at is None:
                    ready_at = message.at
                    outcome.ready_ms = (ready_at - started) * 1000
                    deadline = ready_at + limits.wall_limit
                    cpu_at_ready = outcome.cpu_at_ready = message.cpu_at if message.cpu_at is not None else meter.cpu()
                    meter.mark()
                    activity = run_activity.start()
                elif message.kind == "done":
                    finished = True
            elif kind == "eof":
                finished = True
            elif kind == "overflow":
                outcome.result_overflow = True
                finished = True
            elif kind == "garbage":
                outcome.wire_error = payload
                finished = True
            elif kind == "reader_failed":
                outcome.reader_error = payload
                finished = True
            now = time.monotonic()
            if not finished and ready_at is not None:
                meter.sample_if_due(now)
            if not finished and now >= deadline:
                if ready_at is None:
                    outcome.startup_timed_out = True
                    finished = True
                else:
                    # Waiting for a CPU is the machine's doing, not the run's: give that time back (bounded).
                    outcome.cpu_wait_s = meter.waited()
                    deadline = min(ready_at + limits.wall_limit + outcome.cpu_wait_s, ready_at + limits.wall_cap)
                    if now >= deadline - 0.01:
                        outcome.timed_out = True
                        outcome.starved = limits.starved(outcome.cpu_wait_s)
                        finished = True
            if not finished and ready_at is not None:
                used = meter.cpu()
                if activity is not None:
                    activity.update(now, used + meter.waited_so_far())
                if used - cpu_at_ready > limits.time_s:
                    outcome.cpu_exceeded = True
                    finished = True
    finally:
        if activity is not None:
            run_activity.end(activity)
    if ready_at is not None:
        outcome.cpu_seconds = meter.cpu()
    return ready_at
