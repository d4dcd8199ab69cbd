"""How long a run waited for a CPU (graders/supervision.py RunMeter): what the wall-clock backstop gives back."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from graders.child_events import ChildMessage
from graders.supervision import ChildOutcome, RunMeter, SandboxLimits, watch_events


def _scripted(*samples: dict[int, int]) -> RunMeter:
    """A meter whose threads' run-queue delays (ns) are these, one dict per reading, in order."""
    readings = iter(samples)
    return RunMeter(lambda: 0.0, lambda: next(readings))


def test_waiting_that_moves_between_threads_is_all_counted() -> None:
    """The compile thread waits while the main thread blocks on it, then the main thread waits: the run waited
    for both. Each thread's own total (2 s) was all the old measure saw."""
    s = 1_000_000_000
    meter = _scripted({1: 5 * s, 2: 7 * s},  # at ready: delays from before it do not count
                      {1: 5 * s, 2: 9 * s},  # the compile thread (2) waited 2 s
                      {1: 7 * s, 2: 9 * s},  # then the main thread (1) waited 2 s
                      {1: 7 * s, 2: 9 * s, 3: s // 2})  # a thread started since ready: all of its 0.5 s
    meter.mark()
    meter.sample()
    meter.sample()
    assert meter.waited() == pytest.approx(4.5)


def test_threads_waiting_at_once_count_once() -> None:
    """Ten threads of the run queued together for 1 s: the run waited 1 s, not 10."""
    s = 1_000_000_000
    meter = _scripted({t: 0 for t in range(10)}, {t: s for t in range(10)})
    meter.mark()
    assert meter.waited() == pytest.approx(1.0)


def test_a_thread_gone_between_samples_takes_nothing_with_it() -> None:
    s = 1_000_000_000
    meter = _scripted({1: 0, 2: 0}, {1: s, 2: s}, {2: 3 * s})
    meter.mark()
    meter.sample()
    assert meter.waited() == pytest.approx(3.0)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_a_process_sharing_its_cpu_waited_and_a_sleeping_one_did_not() -> None:
    """On the real kernel: a busy loop sharing one CPU with two others waits about 2/3 of the time, never more
    than the time that passed; one that sleeps waits nothing."""
    cpu = sorted(os.sched_getaffinity(0))[0]
    spin = f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass\n"
    sleep = "import time\ntime.sleep(60)\n"
    rivals = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    runs = [subprocess.Popen([sys.executable, "-c", code]) for code in (spin, sleep)]
    try:
        time.sleep(0.3)  # all started and pinned
        meters = [RunMeter.of_process(proc.pid) for proc in runs]
        for meter in meters:
            meter.mark()
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            time.sleep(RunMeter.SAMPLE_S)
            for meter in meters:
                meter.sample()
        busy_waited, sleeper_waited = (meter.waited() for meter in meters)
        elapsed = time.monotonic() - started
    finally:
        for proc in rivals + runs:
            proc.kill()
            proc.wait()
    assert 0.3 * elapsed < busy_waited <= elapsed + 0.05
    assert sleeper_waited < 0.05


def _watch(limits: SandboxLimits, wait_per_reading_s: float) -> tuple[ChildOutcome, float]:
    """A child that says ready and then never finishes, each reading of its threads' delays `wait_per_reading_s`
    more than the last: the outcome and how long the watcher took to stop it."""
    import queue
    from itertools import count

    from graders.child_events import validate_event

    events: queue.Queue[tuple[str, object]] = queue.Queue()
    events.put(("message", ChildMessage(validate_event({"event": "ready", "pid": 7}, []), (), at=time.monotonic())))
    readings = count()
    meter = RunMeter(lambda: 0.0, lambda: {1: int(next(readings) * wait_per_reading_s * 1e9)})
    outcome = ChildOutcome()
    started = time.monotonic()
    watch_events(events, limits, meter, outcome, startup_s=5)
    return outcome, time.monotonic() - started


def test_waiting_extends_the_backstop_up_to_the_cap_and_a_starved_run_is_marked() -> None:
    limits = SandboxLimits(time_s=0.1)  # backstop 0.3 s, cap 1 s
    outcome, took = _watch(limits, wait_per_reading_s=1.0)  # waiting all the time (and more)
    assert outcome.timed_out and outcome.starved
    assert limits.wall_cap - 0.05 < took < limits.wall_cap + 0.5
    outcome, took = _watch(limits, wait_per_reading_s=0.0)  # a sleeper: no waiting
    assert outcome.timed_out and not outcome.starved
    assert limits.wall_limit - 0.05 < took < limits.wall_limit + 0.5


def test_only_waiting_past_the_cap_is_starving() -> None:
    limits = SandboxLimits(time_s=5)  # backstop 15 s, cap 50 s
    assert not limits.starved(10.0)  # stopped at 25 s: the backstop, with 10 s given back
    assert not limits.starved(35.0)  # stopped at the cap, but it had used its backstop all but 0 s on its own
    assert limits.starved(37.0)
    # A backstop as long as the cap: only the waiting beyond a tenth of it is the machine's doing.
    long_backstop = SandboxLimits(time_s=5, wall_s=60)
    assert long_backstop.wall_cap == long_backstop.wall_limit == 60
    assert not long_backstop.starved(5.0) and long_backstop.starved(6.0)


def test_a_thread_id_given_again_adds_nothing_negative() -> None:
    s = 1_000_000_000
    meter = _scripted({1: 5 * s}, {1: s}, {1: 2 * s})  # thread 1 ended; a new thread 1 has waited 1 s, then 2
    meter.mark()
    meter.sample()
    assert meter.waited() == pytest.approx(1.0)
