"""The server's and the workers' grader: built here, with the executor `GRADAX_POOL` picks, and grading a claim."""

from __future__ import annotations

import logging

from app.core.config import Settings
from app.grading.claims import Claim
from graders.engine import Grader
from graders.executor import Executor, make_executor
from graders.problem import LoadedProblem, ProblemBank
from graders.report import Report, internal_error, starved_of_cpu

log = logging.getLogger("gradax.grading")


def build_grader(settings: Settings, bank: ProblemBank, executor: Executor | None = None) -> Grader:
    """The server's and the workers' grader, with `executor` or else the one `GRADAX_POOL` picks
    (graders/executor.py)."""
    return Grader(bank, settings, executor=executor if executor is not None else make_executor(settings))


# The trusted reference runner's own bound (graders/reference.py): a problem's first grading may compute its
# reference outputs before the submission runs.
REFERENCE_BOUND_S = 120.0


def max_hold_s(grader: Grader, loaded: LoadedProblem | None) -> float:
    """The longest a grading of this problem can legitimately take: computing the reference outputs, starting
    the sandbox, the run itself with its wall-clock backstop, and a margin. A claim held longer than this is
    a grading that hangs; it is left to expire (claims.Keeper)."""
    if loaded is None:
        return 60.0
    limits = grader.limits_for(loaded)
    return REFERENCE_BOUND_S + limits.startup_s + 3 * limits.time_s + 60.0


def charged_s(report: Report) -> float:
    """Grading time charged to the author (fair share's budget, claims.finish), for every try including the
    retries of an internal_error: the CPU time of the submission's own run, measured by its cgroup (every
    thread and process, from its libraries being loaded to its end), what the time limit judges too. So a busy
    machine charges a student no more than an idle one, and a run that sleeps costs its author little CPU
    budget (the slot it holds is bounded by one running attempt per author and the wall-clock backstop). The
    run's wall-clock time when no CPU time was measured (no cgroup). Never the reference outputs or the
    sandbox's start: the grader's own work."""
    if report.usage is not None and report.usage.cpu_s is not None:
        return report.usage.cpu_s
    return report.timings.get("run_ms", 0.0) / 1000


# The wait before an attempt is graded again after internal_error (claims.finish: RETRY), doubled with each try: a
# transient failure (a sandbox that did not start, a worker restarting) gets time to clear. A run the machine starved
# of CPU waits longer: graded again at once on a machine still overloaded, it would fail the same way and add to the
# load that starved it (its run already held a slot for up to the wall-clock cap).
RETRY_DELAY_S = 1.0
BUSY_RETRY_DELAY_S = 15.0
MAX_RETRY_DELAY_S = 60.0  # no longer than a queue worker's sweeper waits before it sends a queued attempt again


def retry_delay_s(report: Report, tries: int) -> float:
    """Seconds before the next try of an attempt whose try number `tries` (from 1) ended in this internal_error."""
    base = BUSY_RETRY_DELAY_S if starved_of_cpu(report) else RETRY_DELAY_S
    return min(base * 2.0 ** max(tries - 1, 0), MAX_RETRY_DELAY_S)


def grade_claimed(grader: Grader, loaded: LoadedProblem | None, held: Claim, *, where: str) -> Report:
    """The report for a claimed attempt, by the in-process dispatcher and by queue workers alike.

    A problem no longer available `where` this runs, or a grader that breaks, gives internal_error (which
    the claim protocol retries): never the student's fault.
    """
    try:
        if loaded is None:
            return internal_error(held.problem_id, held.mode, f"This problem is no longer available on the {where}.")
        return grader.grade_loaded(loaded, held.code, mode=held.mode)
    except Exception as exc:
        log.exception("attempt %d: grader failed", held.attempt_id)
        return internal_error(held.problem_id, held.mode,
                              f"The grader failed ({type(exc).__name__}); this is not your fault.")
