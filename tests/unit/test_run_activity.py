"""Which runs are idle: neither on a CPU nor waiting for one (graders/run_activity.py)."""

from __future__ import annotations

import threading

from graders import run_activity


def test_a_run_is_idle_once_it_stops_gaining_cpu_or_waits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = [100.0]
    monkeypatch.setattr(run_activity.time, "monotonic", lambda: clock[0])
    activity = run_activity.start()
    try:
        me = threading.get_ident()
        activity.update(100.0, 0.5)  # the child's warm-up, counted once
        clock[0] = 101.0
        activity.update(101.0, 0.51)  # 10 ms in a second: under BUSY_S, not a sign of life
        assert me in run_activity.idle_threads(1.0)
        activity.update(101.0, 0.53)  # 30 ms since the last mark: busy again
        assert me not in run_activity.idle_threads(1.0)
        clock[0] = 103.5
        assert me in run_activity.idle_threads(2.0) and me not in run_activity.idle_threads(3.0)
    finally:
        run_activity.end(activity)
    assert me not in run_activity.idle_threads(0.0)  # ended runs are forgotten


def test_only_the_thread_that_started_a_run_ends_it() -> None:
    mine = run_activity.start()
    other: list[run_activity.RunActivity] = []
    t = threading.Thread(target=lambda: other.append(run_activity.start()))
    t.start()
    t.join()
    try:
        run_activity.end(other[0])  # from the wrong thread: nothing happens to this thread's run
        assert threading.get_ident() in run_activity.idle_threads(0.0)
    finally:
        run_activity.end(mine)
        with run_activity._lock:
            run_activity._runs.pop(t.ident or 0, None)
