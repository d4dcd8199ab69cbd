"""`judge` turns what a child did into a report: the verdict follows the first failing test in test order.

The child's events are built by hand here (no sandbox), so each rule is tested on exactly the outcome
it is about: values wrong on early tests and a time limit later, a time limit first, a run that stopped
between tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graders.cases import CaseInput, build_cases
from graders.child_events import ChildMessage, validate_event
from graders.compare import Output
from graders.engine import judge
from graders.problem import LoadedProblem, load_problem
from graders.reference import ProgramOutputs, ReferenceOutputs
from graders.report import Report, TestStatus, Verdict, starved_of_cpu
from graders.sandbox import ChildOutcome

ROOT = Path(__file__).resolve().parents[2]
LEAF = {"t": "leaf", "i": 0}


def M(header: dict, arrays: list[np.ndarray] | None = None) -> ChildMessage:  # type: ignore[type-arg]
    """An event as the parent's reader delivers it: validated against graders/child_events.py."""
    return ChildMessage(validate_event(header, arrays or []), tuple(arrays or []))


@pytest.fixture(scope="module")
def problem() -> tuple[LoadedProblem, list[CaseInput], ReferenceOutputs]:
    loaded = load_problem(ROOT / "problems" / "nnx-module-basics.yaml")
    cases = build_cases(loaded.problem)
    outputs = {i: Output(LEAF, (np.full(3, float(i), np.float32),)) for i in range(len(cases))}
    wrong = {i: Output(LEAF, (np.full(3, float(i) + 1, np.float32),)) for i in range(len(cases))}
    reference = ReferenceOutputs("key", ProgramOutputs(outputs=outputs),
                                 {"no-scaling": ProgramOutputs(outputs=wrong)})
    return loaded, cases, reference


def _events(results: dict[int, float | None], started: list[int]) -> list[ChildMessage]:
    """ready, load ok, and per test a start and (value -> an output, None -> nothing more)."""
    messages = [M({"event": "ready", "pid": 1}), M({"event": "load", "program": 0, "status": "ok"})]
    for index in started:
        messages.append(M({"event": "start", "program": 0, "index": index}))
        value = results.get(index)
        if value is not None:
            messages.append(M({"event": "test", "program": 0, "index": index, "status": "ok",
                                          "duration_ms": 1.0, "tree": LEAF}, [np.full(3, value, np.float32)]))
    return messages


def test_values_wrong_then_time_limit_is_wrong_answer(problem: tuple) -> None:  # type: ignore[type-arg]
    loaded, cases, reference = problem
    # Tests 0-3 answer wrongly (value + 1, the known mistake's outputs), test 4 runs out of time.
    outcome = ChildOutcome(messages=_events({i: i + 1.0 for i in range(4)}, started=[0, 1, 2, 3, 4]),
                           timed_out=True)
    report = judge(loaded, cases, reference, outcome, "submit")
    assert report.verdict == Verdict.WRONG_ANSWER
    statuses = [t.status for t in report.tests]
    assert statuses[:4] == [TestStatus.FAILED] * 4
    assert statuses[4] == TestStatus.TIMEOUT and report.tests[4].verdict == Verdict.TIME_LIMIT_EXCEEDED
    assert all(s == TestStatus.SKIPPED for s in statuses[5:])
    assert report.tests[0].verdict == Verdict.WRONG_ANSWER
    assert f"First failure, test '{cases[0].name}'" in report.message
    assert f"The run was then stopped during test '{cases[4].name}'" in report.message
    # The known mistake is still recognised from the tests that ran.
    assert report.diagnosis == loaded.problem.known_mistakes[0].message


def test_time_limit_on_the_first_failing_test_is_time_limit_exceeded(problem: tuple) -> None:  # type: ignore[type-arg]
    loaded, cases, reference = problem
    outcome = ChildOutcome(messages=_events({0: 0.0, 1: 1.0}, started=[0, 1, 2]), timed_out=True)
    report = judge(loaded, cases, reference, outcome, "submit")
    assert report.verdict == Verdict.TIME_LIMIT_EXCEEDED
    assert report.passed == 2 and report.tests[2].status == TestStatus.TIMEOUT
    assert f"test '{cases[2].name}'" in report.message
    assert report.diagnosis is None


def test_error_before_a_wrong_answer_is_runtime_error(problem: tuple) -> None:  # type: ignore[type-arg]
    loaded, cases, reference = problem
    messages = _events({}, started=[])
    messages.append(M({"event": "start", "program": 0, "index": 0}))
    messages.append(M({"event": "test", "program": 0, "index": 0, "status": "error", "duration_ms": 1.0,
                                  "error_type": "ValueError", "message": "boom", "traceback": "", "line": 3}))
    messages += _events({1: 5.0}, started=[1])[2:]
    report = judge(loaded, cases[:2], reference, ChildOutcome(messages=messages), "submit")
    assert report.verdict == Verdict.RUNTIME_ERROR
    assert [t.verdict for t in report.tests] == [Verdict.RUNTIME_ERROR, Verdict.WRONG_ANSWER]


def test_all_ran_tests_passed_but_run_stopped_between_tests(problem: tuple) -> None:  # type: ignore[type-arg]
    loaded, cases, reference = problem
    outcome = ChildOutcome(messages=_events({0: 0.0, 1: 1.0}, started=[0, 1]), timed_out=True)
    report = judge(loaded, cases, reference, outcome, "submit")
    assert report.verdict == Verdict.TIME_LIMIT_EXCEEDED
    assert report.passed == 2 and report.tests[2].status == TestStatus.SKIPPED


def test_a_run_that_ended_between_public_tests_says_after_which_and_how(problem: tuple) -> None:  # type: ignore[type-arg]
    """No limit, no test running: the run ended between two tests (a thread of the program's called os._exit, or it
    took the grader's channel). The report says after which test and, while the next test is public, how."""
    import dataclasses

    loaded, all_cases, reference = problem
    cases = [dataclasses.replace(c, public=True) for c in all_cases[:3]]  # a Run of three public tests
    outcome = ChildOutcome(messages=_events({0: 0.0}, started=[0]), exit_code=5)
    report = judge(loaded, cases, reference, outcome, "run")
    assert report.verdict == Verdict.RUNTIME_ERROR and report.passed == 1
    assert f"The run ended after test '{cases[0].name}', before test '{cases[1].name}' started" in report.message
    assert "the process exited with status 5" in report.message, report.message
    assert "internal" not in report.message and "not your fault" not in report.message


@pytest.mark.parametrize("exit_code", [3, 72, -9])
def test_how_a_run_ended_before_a_hidden_test_is_not_said(problem: tuple, exit_code: int) -> None:  # type: ignore[type-arg]
    """Before a hidden test the process may hold its inputs: its exit status is the program's to choose from them."""
    loaded, cases, reference = problem
    first_hidden = next(i for i, c in enumerate(cases) if not c.public)
    ran = {i: float(i) for i in range(first_hidden)}
    outcome = ChildOutcome(messages=_events(ran, started=list(ran)), exit_code=exit_code, held_back_sent=True)
    report = judge(loaded, cases, reference, outcome, "submit")
    assert report.verdict == Verdict.RUNTIME_ERROR
    assert f"before test '{cases[first_hidden].name}' started" in report.message
    assert "how is not shown" in report.message
    assert str(abs(exit_code)) not in report.message.split("passed.", 1)[1], report.message


def test_every_test_passing_is_accepted(problem: tuple) -> None:  # type: ignore[type-arg]
    loaded, cases, reference = problem
    outcome = ChildOutcome(messages=_events({i: float(i) for i in range(len(cases))}, started=list(range(len(cases)))))
    report = judge(loaded, cases, reference, outcome, "submit")
    assert report.verdict == Verdict.ACCEPTED and report.passed == len(cases)
    assert all(t.verdict is None for t in report.tests)


@pytest.mark.parametrize("stopped", ["wall", "cpu", "memory"])
def test_a_limit_reached_while_the_file_loads_is_not_blamed_on_the_file(problem: tuple,  # type: ignore[type-arg]
                                                                          stopped: str) -> None:
    """Stopped at a limit before its file finished loading (it slept, spun or allocated at import, or stopped itself
    with SIGSTOP): the grader killed it with SIGKILL, so the message says which limit, not "Your file stopped the
    grading process: the process was killed by SIGKILL". A file that kills itself at import still reads so."""
    from graders.sandbox import SandboxLimits

    loaded, cases, reference = problem
    limits = SandboxLimits(time_s=5, memory_mb=256)
    ready = [M({"event": "ready", "pid": 1})]
    flags = {"wall": {"timed_out": True}, "cpu": {"cpu_exceeded": True},
             "memory": {"memory_exceeded": True}}[stopped]
    outcome = ChildOutcome(messages=list(ready), exit_code=-9, run_ms=15_000, cpu_at_ready=1.0,
                           cpu_seconds=1.0 if stopped == "wall" else 6.2, **flags)
    report = judge(loaded, cases, reference, outcome, "submit", limits=limits)
    verdict = Verdict.MEMORY_LIMIT_EXCEEDED if stopped == "memory" else Verdict.TIME_LIMIT_EXCEEDED
    assert report.verdict == verdict, report.message
    assert "while your file was being loaded" in report.message, report.message
    assert "stopped the grading process" not in report.message and "SIGKILL" not in report.message, report.message
    killed_itself = judge(loaded, cases, reference, ChildOutcome(messages=list(ready), exit_code=-9), "submit",
                          limits=limits)
    assert killed_itself.verdict == Verdict.RUNTIME_ERROR
    assert killed_itself.message == ("Your file stopped the grading process: the process was killed by SIGKILL "
                                     "while it was being loaded."), killed_itself.message


def test_a_run_the_busy_machine_starved_is_not_judged(problem: tuple) -> None:  # type: ignore[type-arg]
    """Stopped at the wall-clock cap after waiting for a CPU most of the time (graders/supervision.py): the
    machine failed the run, so it is internal_error (the server grades it again), not a time limit."""
    from graders.sandbox import SandboxLimits

    loaded, cases, reference = problem
    limits = SandboxLimits(time_s=5)
    outcome = ChildOutcome(messages=_events({0: 0.0, 1: 1.0}, started=[0, 1, 2]), timed_out=True, starved=True,
                           run_ms=50_000, cpu_at_ready=1.0, cpu_seconds=4.0, cpu_wait_s=44.0)
    report = judge(loaded, cases, reference, outcome, "submit", limits=limits)
    assert report.verdict == Verdict.INTERNAL_ERROR
    assert report.message.startswith("The grading machine was too busy to run your code: in 50.0 s it got 3.0 s "
                                      "of CPU time and waited 44.0 s for a CPU (a run may take at most 50 s")
    assert "not your fault" in report.message
    assert report.usage is not None and report.usage.cpu_wait_s == 44.0
    assert starved_of_cpu(report)  # the server grades it again after a longer wait (app/grading/backend.py)
    # The same run stopped by the backstop with little waiting (a sleeper) is the submission's time limit.
    outcome.starved = False
    judged = judge(loaded, cases, reference, outcome, "submit", limits=limits)
    assert judged.verdict == Verdict.TIME_LIMIT_EXCEEDED and not starved_of_cpu(judged)


def _comparable(report: Report) -> str:
    """A report as JSON without what every run has of its own (timings, usage)."""
    data = report.to_json_dict()
    for key in ("timings", "usage", "duration_ms"):
        data.pop(key, None)
    return json.dumps(data, sort_keys=True)


def _public_then(cases: list[CaseInput], hidden: list[ChildMessage]) -> list[ChildMessage]:
    """The public tests answered right, then what the first hidden test did."""
    public = [i for i, c in enumerate(cases) if c.public]
    messages = _events({i: float(i) for i in public}, started=public)
    return [*messages, M({"event": "start", "program": 0, "index": len(public)}), *hidden]


def _error_event(index: int, error_type: str, message: str) -> ChildMessage:
    return M({"event": "test", "program": 0, "index": index, "status": "error", "duration_ms": 1.0,
              "error_type": error_type, "message": message, "traceback": "", "line": 3})


@pytest.mark.parametrize("variants", [
    # How the process ended: an exit status, a signal (each is a byte the submission chooses from a hidden input).
    [{"exit_code": 3}, {"exit_code": 77}, {"exit_code": -11}, {"exit_code": 134}],
    # Which advice an error's message selects (graders/diagnose.py PITFALLS).
    [{"error": ("ValueError", "Missing required argument `grads`")},
     {"error": ("ValueError", "Invalid rng value: 1.5")}, {"error": ("ValueError", "nothing known")}],
    # Which verdict an error's message selects (XLA's out-of-memory is told by its message).
    [{"error": ("JaxRuntimeError", "RESOURCE_EXHAUSTED: Out of memory allocating 4398046511104 bytes.")},
     {"error": ("JaxRuntimeError", "INTERNAL: something else")}],
], ids=["how-it-ended", "error-advice", "error-verdict"])
def test_what_a_hidden_test_chooses_does_not_change_the_report(problem: tuple, variants: list[dict]) -> None:  # type: ignore[type-arg]
    """Hidden inputs in a submission's hands: anything it can choose in a hidden test (its exit status, a signal,
    an error's message) gives one and the same report, but for the run's totals. A public test says it all."""
    loaded, cases, reference = problem
    n_public = sum(c.public for c in cases)
    reports = []
    for variant in variants:
        hidden = [_error_event(n_public, *variant["error"])] if "error" in variant else []
        outcome = ChildOutcome(messages=_public_then(cases, hidden), exit_code=variant.get("exit_code", 0))
        reports.append(judge(loaded, cases, reference, outcome, "submit"))
    assert reports[0].verdict == Verdict.RUNTIME_ERROR
    assert "hidden test" in reports[0].tests[n_public].message
    assert len({_comparable(r) for r in reports}) == 1, [r.tests[n_public].message for r in reports]
    # The same choices on a public test are shown: the student debugs with those.
    public = []
    for variant in variants:
        messages = _events({}, started=[])
        messages.append(M({"event": "start", "program": 0, "index": 0}))
        if "error" in variant:
            messages.append(_error_event(0, *variant["error"]))
        outcome = ChildOutcome(messages=messages, exit_code=variant.get("exit_code", 0))
        public.append(judge(loaded, cases, reference, outcome, "submit"))
    assert len({_comparable(r) for r in public}) == len(variants)


@pytest.mark.parametrize(("error_type", "message", "public"), [
    ("MemoryError", "Unable to allocate 8.00 TiB for an array with shape (1099511627776,) and data type float64", True),
    ("JaxRuntimeError", "RESOURCE_EXHAUSTED: Out of memory allocating 4398046511104 bytes.", True),
    ("MemoryError", "Unable to allocate 8.00 TiB", False),
])
def test_an_allocation_refused_for_memory_is_memory_limit_exceeded(problem: tuple, error_type: str,  # type: ignore[type-arg]
                                                                    message: str, public: bool) -> None:
    """Asked for at once, an allocation over the limit fails with an error before any memory is used (numpy's
    MemoryError, XLA's RESOURCE_EXHAUSTED); grown slowly, the limit stops it. Both are the memory limit."""
    from graders.sandbox import SandboxLimits

    loaded, cases, reference = problem
    index = 0 if public else sum(c.public for c in cases)
    messages = _events({i: float(i) for i in range(index)}, started=list(range(index)))
    messages += [M({"event": "start", "program": 0, "index": index}), _error_event(index, error_type, message)]
    report = judge(loaded, cases, reference, ChildOutcome(messages=messages), "submit",
                   limits=SandboxLimits(memory_mb=2048))
    assert report.verdict == Verdict.MEMORY_LIMIT_EXCEEDED
    test = report.tests[index]
    assert test.verdict == Verdict.MEMORY_LIMIT_EXCEEDED and test.status == TestStatus.ERROR
    assert test.message.startswith("memory limit exceeded during this test: ") and "2048 MiB" in test.message
    assert (message in test.message) == public, test.message
    assert f"First failure, test '{cases[index].name}': memory limit exceeded" in report.message


def test_a_hidden_model_check_failure_gives_the_advice_of_what_is_shown(problem: tuple,  # type: ignore[type-arg]
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A model check failed on a hidden test names the check only; the advice (graders/diagnose.py STAGE_PITFALLS)
    is chosen from that too, not from the full message, whose attribute and class names the submission chose."""
    from graders import engine
    from graders.compare import Comparison
    from graders.model_checks import StageContext

    loaded, cases, reference = problem
    n_public = sum(c.public for c in cases)
    full = {"plain": "the model's attribute 'w' is a plain jax.Array",
            "missing": "the model has no nnx.Param of shape (3, 4)"}

    def judged(kind: str, fail_public: bool) -> Report:
        def staged(cmp: Comparison, ctx: StageContext) -> Comparison:
            return Comparison(False, "state", full[kind]) if ctx.public == fail_public else cmp

        monkeypatch.setattr(engine.model_checks, "staged", staged)
        outcome = ChildOutcome(messages=_events({i: float(i) for i in range(len(cases))},
                                                started=list(range(len(cases)))))
        return judge(loaded, cases, reference, outcome, "submit")

    hidden = [judged(kind, fail_public=False) for kind in full]
    assert len({_comparable(r) for r in hidden}) == 1
    assert all(r.tests[n_public].message == engine.model_checks.hidden_stage_message("state") for r in hidden)
    public = [judged(kind, fail_public=True) for kind in full]
    assert len({r.diagnosis for r in public}) == 2 and None not in {r.diagnosis for r in public}


def test_a_submits_memory_peak_is_the_one_before_the_hidden_tests_unless_it_reached_the_limit(problem: tuple) -> None:  # type: ignore[type-arg]
    """What a hidden test allocated is the submission's to choose: the report shows the peak read when the hidden
    inputs were sent (graders/supervision.py ChildPipes), unless the run reached its limit (then the limit is it)."""
    from graders import limits_text
    from graders.sandbox import SandboxLimits

    loaded, cases, reference = problem
    limits = SandboxLimits(time_s=5, memory_mb=512)
    before, after = 40 * 2**20, 300 * 2**20
    outcome = ChildOutcome(messages=_events({i: float(i) for i in range(len(cases))}, started=list(range(len(cases)))),
                           held_back_sent=True, memory_peak_at_seal=before, memory_peak=after)
    assert limits_text.run_usage(outcome).memory_peak_mb == 40.0
    outcome.memory_limit_reached = True  # a hidden test touched the limit: the peak is (about) the limit
    assert limits_text.run_usage(outcome).memory_peak_mb == 300.0
    stopped = ChildOutcome(messages=_events({0: 0.0}, started=[0, 1]), held_back_sent=True,
                           memory_peak_at_seal=before, memory_peak=512 * 2**20, memory_exceeded=True)
    report = judge(loaded, cases, reference, stopped, "submit", limits=limits)
    assert report.verdict == Verdict.MEMORY_LIMIT_EXCEEDED
    assert "reached 512 MiB, the limit is 512 MiB" in report.tests[1].message, report.tests[1].message
    run = ChildOutcome(messages=[], memory_peak=after)  # a Run: no hidden tests, the run's own peak
    assert limits_text.run_usage(run).memory_peak_mb == 300.0
