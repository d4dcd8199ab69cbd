"""What fair share charges an author for a grading (app/grading/backend.charged_s)."""

from __future__ import annotations

from app.grading.backend import charged_s
from graders.report import Report, RunUsage, Verdict


def report(run_ms: float, cpu_s: float | None) -> Report:
    usage = None if cpu_s is None else RunUsage(cpu_s=cpu_s, wall_s=run_ms / 1000)
    return Report(problem="p", verdict=Verdict.ACCEPTED, mode="submit", timings={"run_ms": run_ms}, usage=usage)


def test_a_run_is_charged_its_cgroup_cpu_time_not_its_wall_clock_time() -> None:
    # A busy machine stretched a 0.4 CPU-s run to 6 s of wall-clock time: the author pays 0.4 s.
    assert charged_s(report(6000.0, 0.4)) == 0.4
    # Threads on two cores: more CPU than wall-clock time, all of it charged.
    assert charged_s(report(1000.0, 1.8)) == 1.8


def test_without_a_cpu_measurement_the_run_is_charged_its_wall_clock_time() -> None:
    assert charged_s(report(2500.0, None)) == 2.5
    assert charged_s(Report(problem="p", verdict=Verdict.INTERNAL_ERROR, mode="submit")) == 0.0
