"""What a limit verdict says: the limit and what was seen, in the student's words.

"used 20.3 s of CPU time, the limit is 20 s", "the memory of the run reached 2048 MiB, the limit is 2048
MiB", "it printed 78.1 MB": a student must be able to tell a slow loop from a sleep, a busy machine from
their own code, and a flood of prints from a slow computation. Used by `graders/engine.py` for the
report's messages and its `limits`/`usage` objects.
"""

from __future__ import annotations

from graders.report import RunLimits, RunUsage
from graders.supervision import ChildOutcome, SandboxLimits

# The result pipe carries headers and npy framing on top of the numbers (graders/engine.py limits_for).
RESULT_FRAMING = 1024 * 1024
# Printing more than this is worth mentioning next to a time limit.
PRINTED_NOTE = 64 * 1024


def size(n: int) -> str:
    if n >= 10**6:
        return f"{n / 10**6:.1f} MB"
    if n >= 10**3:
        return f"{n / 10**3:.1f} kB"
    return f"{n} bytes"


def printed(outcome: ChildOutcome) -> str:
    """A clause about a flood of prints, or ""."""
    total = outcome.stdout_total + outcome.stderr_total
    if outcome.hidden_log_bytes >= PRINTED_NOTE:  # how much, once the hidden inputs were there, is not said
        return ("; it printed a lot to stdout and stderr during the hidden tests (none of it is shown), and printing "
                "that much takes time")
    if total < PRINTED_NOTE:
        return ""
    return (f"; it printed {size(total)} to stdout and stderr (only the start is kept in the report), "
            "and printing that much takes time")


def time_phrase(outcome: ChildOutcome, limits: SandboxLimits | None) -> str:
    """What the time limit saw, e.g. "used 20.3 s of CPU time, the limit is 20 s"."""
    if limits is None:
        return "the run was stopped from outside"
    cpu = outcome.run_cpu_s
    if outcome.cpu_exceeded or not outcome.timed_out:
        used = f"{cpu:.1f} s" if cpu is not None else "more than its limit"
        return f"used {used} of CPU time, the limit is {limits.time_s:g} s" + printed(outcome)
    wall = (outcome.run_ms or 0.0) / 1000
    waited = outcome.cpu_wait_s or 0.0
    used = f"only {cpu:.1f} s" if cpu is not None else "little"
    text = (f"ran for {wall:.1f} s of wall-clock time but used {used} of its {limits.time_s:g} s of CPU time: "
            f"it was sleeping or waiting, and a run may last at most {limits.wall_limit:g} s")
    if waited >= 0.05:
        text += f" plus the {waited:.1f} s it waited for a busy CPU"
    return text + printed(outcome)


def machine_too_busy(outcome: ChildOutcome, limits: SandboxLimits | None) -> str:
    """The message of a run the machine starved of CPU time (`SandboxLimits.starved`): nothing is judged."""
    wall = (outcome.run_ms or 0.0) / 1000
    cpu = outcome.run_cpu_s or 0.0
    waited = outcome.cpu_wait_s or 0.0
    cap = f" (a run may take at most {limits.wall_cap:g} s, however busy the machine)" if limits is not None else ""
    return (f"The grading machine was too busy to run your code: in {wall:.1f} s it got {cpu:.1f} s of CPU time and "
            f"waited {waited:.1f} s for a CPU{cap}. This is not your fault and says nothing about your code; "
            "graded again when the machine is less busy, it gets its verdict.")


def memory_phrase(outcome: ChildOutcome, limits: SandboxLimits | None) -> str:
    limit = f", the limit is {limits.memory_mb} MiB" if limits is not None else ""
    peak = outcome.shown_memory_peak()
    if peak is None:
        return f"the run used all the memory it may use{limit}"
    return f"the memory of the run reached {peak / 2**20:.0f} MiB{limit}"


def output_phrase(outcome: ChildOutcome, limits: SandboxLimits | None) -> str:
    if limits is None:
        return "the result was larger than this problem allows"
    allowed = max(0, limits.result_bytes - RESULT_FRAMING)
    return (f"more than {size(limits.result_bytes)} arrived on the result channel; the output limit is "
            f"{size(allowed)} of results")


def run_limits(limits: SandboxLimits) -> RunLimits:
    return RunLimits(cpu_s=limits.time_s, wall_s=limits.wall_limit, wall_cap_s=limits.wall_cap,
                     memory_mb=limits.memory_mb, output_kb=max(0, limits.result_bytes - RESULT_FRAMING) // 1024,
                     log_kb=limits.log_bytes // 1024)


def run_usage(outcome: ChildOutcome) -> RunUsage:
    return RunUsage(
        cpu_s=None if outcome.run_cpu_s is None else round(outcome.run_cpu_s, 3),
        wall_s=None if outcome.run_ms is None else round(outcome.run_ms / 1000, 3),
        cpu_wait_s=None if outcome.cpu_wait_s is None else round(outcome.cpu_wait_s, 3),
        memory_peak_mb=None if (peak := outcome.shown_memory_peak()) is None else round(peak / 2**20, 1),
        result_bytes=outcome.result_bytes,
        stdout_bytes=outcome.stdout_total,
        stderr_bytes=outcome.stderr_total,
    )
