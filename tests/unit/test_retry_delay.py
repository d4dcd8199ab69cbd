"""How long an attempt waits before it is graded again after internal_error (app/grading/backend.retry_delay_s)."""

from __future__ import annotations

from app.grading.backend import BUSY_RETRY_DELAY_S, MAX_RETRY_DELAY_S, RETRY_DELAY_S, retry_delay_s
from graders.report import Report, RunUsage, Verdict, starved_of_cpu


def report(verdict: Verdict, cpu_wait_s: float | None = None) -> Report:
    usage = RunUsage(cpu_s=1.7, wall_s=40.0, cpu_wait_s=cpu_wait_s)
    return Report(problem="p", verdict=verdict, mode="submit", usage=usage)


def test_a_grader_failure_is_tried_again_after_a_wait_that_doubles() -> None:
    failed = Report(problem="p", verdict=Verdict.INTERNAL_ERROR, mode="submit", message="sandbox unavailable")
    assert not starved_of_cpu(failed)
    assert [retry_delay_s(failed, tries) for tries in (1, 2, 3)] == [RETRY_DELAY_S, 2 * RETRY_DELAY_S,
                                                                     4 * RETRY_DELAY_S]
    assert retry_delay_s(failed, 30) == MAX_RETRY_DELAY_S


def test_a_run_the_machine_starved_waits_longer_for_the_load_to_pass() -> None:
    busy = report(Verdict.INTERNAL_ERROR, cpu_wait_s=38.3)
    assert starved_of_cpu(busy)
    assert retry_delay_s(busy, 1) == BUSY_RETRY_DELAY_S > 10 * RETRY_DELAY_S
    assert retry_delay_s(busy, 2) == 2 * BUSY_RETRY_DELAY_S
    assert retry_delay_s(busy, 5) == MAX_RETRY_DELAY_S


def test_only_an_internal_error_with_a_measured_wait_is_the_machine_being_busy() -> None:
    # A time limit judged at the backstop carries its (small) wait too: it is the submission's verdict, no retry.
    assert not starved_of_cpu(report(Verdict.TIME_LIMIT_EXCEEDED, cpu_wait_s=0.4))
    assert not starved_of_cpu(report(Verdict.INTERNAL_ERROR, cpu_wait_s=None))
    assert not starved_of_cpu(report(Verdict.INTERNAL_ERROR, cpu_wait_s=0.0))
