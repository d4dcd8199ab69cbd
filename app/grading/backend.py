"""The one place where the grader and its executor are built (`GRADAX_POOL` picks the executor)."""

from __future__ import annotations

import logging

from app.core.config import Settings
from app.grading.claims import Claim
from graders.engine import Executor, Grader
from graders.problem import LoadedProblem, ProblemBank
from graders.report import Report, Verdict

log = logging.getLogger("gradax.grading")


def build_executor(settings: Settings) -> Executor:
    from graders.pool import make_executor  # (the pool's imports are heavy; cold-only tools never need them)

    return make_executor(settings)


def build_grader(settings: Settings, bank: ProblemBank) -> Grader:
    return Grader(bank, settings, executor=build_executor(settings))


def close_grader(grader: Grader) -> None:
    """Stop what the executor keeps running (a warm pool's zygote and children)."""
    close = getattr(grader.executor, "close", None)
    if callable(close):
        close()


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


def grade_claimed(grader: Grader, loaded: LoadedProblem | None, held: Claim, *, where: str) -> Report:
    """The report for a claimed attempt, by the in-process dispatcher and by queue workers alike.

    A problem no longer available `where` this runs, or a grader that breaks, gives internal_error (which
    the claim protocol retries): never the student's fault.
    """
    try:
        if loaded is None:
            return Report(problem=held.problem_id, verdict=Verdict.INTERNAL_ERROR, mode=held.mode,
                          message=f"This problem is no longer available on the {where}.")
        return grader.grade_loaded(loaded, held.code, mode=held.mode)
    except Exception as exc:
        log.exception("attempt %d: grader failed", held.attempt_id)
        return Report(problem=held.problem_id, verdict=Verdict.INTERNAL_ERROR, mode=held.mode,
                      message=f"The grader failed ({type(exc).__name__}); this is not your fault.")
