"""Which runs in this process are doing anything: using a CPU, or waiting for one.

A run that does neither (it sleeps, blocks on something that never comes, or stopped itself) keeps its grading slot
until the wall-clock backstop, three times its CPU limit (a minute for most problems), while the core it would use
sits idle. So a few accounts whose submissions sleep could hold every slot and stall everyone else's feedback for
that long. The supervision loop (`watch_events`) reports each run's progress here, by the thread that watches it;
the in-process dispatcher (app/grading/inprocess_dispatcher.py) grades another attempt beside a run that has been
idle for a while, since the core is free.
"""

from __future__ import annotations

import threading
import time

# CPU time (or time waiting for a CPU) since the last mark that counts as doing something: a run that gains less
# over `idle_s` used under 1 % of a core.
BUSY_S = 0.02

_lock = threading.Lock()
_runs: dict[int, RunActivity] = {}  # by the ident of the thread that watches the run


class RunActivity:
    """One run's last sign of life (monotonic), as its supervision loop sees it."""

    def __init__(self, now: float) -> None:
        self.busy_at = now
        self._mark = 0.0

    def update(self, now: float, used_s: float) -> None:
        """`used_s`: the run's CPU time plus its waits for a CPU so far (both only grow)."""
        if used_s - self._mark >= BUSY_S:
            self.busy_at, self._mark = now, used_s


def start() -> RunActivity:
    """A run watched by the calling thread starts (its child said ready)."""
    activity = RunActivity(time.monotonic())
    with _lock:
        _runs[threading.get_ident()] = activity
    return activity


def end(activity: RunActivity) -> None:
    with _lock:
        if _runs.get(threading.get_ident()) is activity:
            del _runs[threading.get_ident()]


def idle_threads(idle_s: float) -> set[int]:
    """The threads whose run has neither used nor waited for a CPU for `idle_s` seconds."""
    now = time.monotonic()
    with _lock:
        return {ident for ident, run in _runs.items() if now - run.busy_at >= idle_s}
