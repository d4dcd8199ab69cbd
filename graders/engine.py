"""Grade one submission: validate it, run it in the sandbox, compare, diagnose, report.

Every path (CLI, web server, queue worker) grades through `Grader.grade`, so they agree on verdicts.
A failure of the grader itself becomes `internal_error`, never a student's verdict.
"""

from __future__ import annotations

import builtins
import logging
import re
import signal
import time
from typing import Any, Literal

from graders import child_events as ev
from graders import diagnose, limits_text, model_checks
from graders.cases import CaseInput, build_cases, points_score
from graders.compare import Output, compare
from graders.compile_profile import ProfileCache
from graders.executor import Executor, make_executor
from graders.model_checks import ProbeReport, StageContext
from graders.prepare import outputs_and_profile
from graders.problem import KnownMistake, LoadedProblem, Problem, ProblemBank, StateChecks
from graders.reference import ReferenceCache, ReferenceError, ReferenceOutputs
from graders.report import Report, TestReport, TestStatus, Verdict, clip_log, internal_error
from graders.request import build_request
from graders.sandbox import warn_unsandboxed
from graders.settings import GraderSettings, get_settings
from graders.supervision import ChildOutcome, SandboxLimits

log = logging.getLogger("gradax.engine")
CHECK_STAGES = ("state", "gradients", "retrace", "batch_invariance", "eval_determinism")
Mode = Literal["submit", "run"]


class InvalidInput(Exception):
    """The submitted bytes cannot be graded: too large, not UTF-8, or empty."""


def decode_submission(code: bytes | str, max_bytes: int) -> str:
    raw = code.encode("utf-8") if isinstance(code, str) else code
    if len(raw) > max_bytes:
        raise InvalidInput(f"the file is {len(raw)} bytes; the limit is {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the file is not UTF-8 text (byte {exc.start} is invalid)") from exc
    if not text.strip():
        raise InvalidInput("the file is empty")
    return text


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


def _exit_description(exit_code: int | None) -> str:
    if exit_code is None:
        return "the process ended"
    if exit_code < 0:
        return f"the process was killed by {_signal_name(-exit_code)}"
    if exit_code > 128:
        return f"the process was killed by {_signal_name(exit_code - 128)}"
    return f"the process exited with status {exit_code}"


class Grader:
    def __init__(self, bank: ProblemBank, settings: GraderSettings | None = None,
                 executor: Executor | None = None):
        self.bank = bank
        self.settings = settings or get_settings()
        if self.settings.sandbox == "none":
            warn_unsandboxed()
        # Cold unless told otherwise: the server and `gradax grade` with GRADAX_POOL=warm pass the pool.
        self.executor: Executor = executor or make_executor(self.settings, pool="cold")
        self.references = ReferenceCache(self.settings.cache_dir)

    def limits_for(self, loaded: LoadedProblem) -> SandboxLimits:
        """The problem's limits, clamped to the operator's maxima. Clients never choose limits."""
        lim = loaded.problem.limits
        s = self.settings
        output_bytes = min(lim.output_kb, s.max_output_kb) * 1024
        return SandboxLimits(
            time_s=min(lim.time_s, s.max_time_s),
            memory_mb=min(lim.memory_mb, s.max_memory_mb),
            # The pipe carries headers and npy framing as well as the numbers themselves.
            result_bytes=output_bytes + 1024 * 1024,
            startup_s=s.startup_timeout_s,
        )

    def reference_for(self, loaded: LoadedProblem) -> tuple[list[CaseInput], ReferenceOutputs]:
        """The problem's cases and reference outputs, from the cache or computed now. Through a warm pool, which
        replays the problem's compile profile, one trusted run computes both as `gradax prepare` does, instead of
        this run and a recording run of the pool's own."""
        cases = build_cases(loaded.problem)
        profiles = getattr(self.executor, "profiles", None)
        if isinstance(profiles, ProfileCache):
            return cases, outputs_and_profile(self.references, profiles, loaded, cases)
        return cases, self.references.get(loaded, cases)

    def grade(self, problem_id: str, code: bytes | str, *, mode: Mode = "submit") -> Report:
        loaded = self.bank.get(problem_id)
        if loaded is None:
            raise KeyError(problem_id)
        return self.grade_loaded(loaded, code, mode=mode)

    def grade_loaded(self, loaded: LoadedProblem, code: bytes | str, *, mode: Mode = "submit") -> Report:
        start = time.monotonic()
        try:
            report = self._grade(loaded, code, mode)
        except Exception as exc:  # the grader failed, not the student
            log.exception("grader failure on %s", loaded.id)
            report = internal_error(loaded.id, mode, f"The grader failed ({type(exc).__name__}); this is not your "
                                                     "fault. The attempt will be retried.")
        report.duration_ms = round((time.monotonic() - start) * 1000, 1)
        return report

    def _grade(self, loaded: LoadedProblem, code: bytes | str, mode: Mode) -> Report:
        problem = loaded.problem
        try:
            text = decode_submission(code, self.settings.max_code_bytes)
        except InvalidInput as exc:
            return Report(problem=loaded.id, verdict=Verdict.INVALID_SUBMISSION, mode=mode, message=str(exc))
        t0 = time.monotonic()
        try:
            all_cases, reference = self.reference_for(loaded)
        except ReferenceError as exc:
            log.error("reference failure: %s", exc)
            return internal_error(loaded.id, mode, "The reference solution of this problem could not be run; "
                                                   "the instructors have been told. This is not your fault.")
        n_public = len(problem.tests.public)
        cases = all_cases[:n_public] if mode == "run" else all_cases
        limits = self.limits_for(loaded)
        # Submit: the hidden tests' inputs reach the child only once the public tests are reported (graders/request.py).
        request = build_request(loaded, cases, [text], output_budget=limits.result_bytes - 1024 * 1024,
                                probes=submission_probes(loaded, reference),
                                hold_back_from=n_public)
        t1 = time.monotonic()
        outcome = self.executor.grade(loaded, request, limits)
        t2 = time.monotonic()
        report = judge(loaded, cases, reference, outcome, mode, limits=limits)
        report.timings = {
            **report.timings,
            "reference_ms": round((t1 - t0) * 1000, 1),
            "sandbox_ms": round((t2 - t1) * 1000, 1),
            "startup_ms": round(outcome.ready_ms or 0.0, 1),
            "run_ms": round(outcome.run_ms or 0.0, 1),
            "compare_ms": round((time.monotonic() - t2) * 1000, 1),
        }
        memory_peak = outcome.shown_memory_peak()
        if memory_peak is not None:
            report.timings["memory_peak_mb"] = round(memory_peak / 2**20, 1)
        # What reading this child's pipes cost the parent (the web server's process when grading in-process).
        report.timings["parent_read_cpu_ms"] = round(outcome.parent_cpu_s * 1000, 1)
        # The child's own figures (durations, compile and probe times) of the public tests only: a hidden test's are
        # numbers its process wrote once the hidden inputs were in it, the submission's to choose.
        shown = public_results(outcome, cases)
        probes = [t.probes for t in shown if isinstance(t, ev.TestOk) and t.probes is not None]
        if probes:
            # What describing the model and running the checks cost inside the child, over the shown tests.
            report.timings["probes_ms"] = round(sum(p.duration_ms or 0.0 for p in probes), 1)
            report.timings["probes_cpu_ms"] = round(sum(p.cpu_ms or 0.0 for p in probes), 1)
        _compile_share(report, shown, hidden_ran=len(shown) < len(outcome.events("test")))
        return report


# A submission's own compilation is named in its report from this share of its tests' time (and this much).
COMPILE_SHARE_NOTE = 0.3
COMPILE_NOTE_MIN_MS = 100.0


TestResultEvent = ev.TestOk | ev.TestError | ev.TestRejected


def public_results(outcome: ChildOutcome, cases: list[CaseInput]) -> list[TestResultEvent]:
    """The child's results of the public tests, in the order they came."""
    return [m.event for m in outcome.events("test") if isinstance(m.event, TestResultEvent)
            and m.event.index < len(cases) and cases[m.event.index].public]


def _compile_share(report: Report, tests: list[TestResultEvent], *, hidden_ran: bool) -> None:
    """`timings.compile_ms` and, where it is a large part, `timing`: a submission that jits functions of its
    own pays their compilation in its own time; the report says so instead of leaving it to look slow. From the
    public tests' figures (`hidden_ran`: a Submit's hidden tests ran too, and their figures are not used)."""
    compiled = sum(t.compile_ms or 0.0 for t in tests)
    total = sum(t.duration_ms for t in tests)
    if not tests or compiled <= 0:
        return
    report.timings["compile_ms"] = round(compiled, 1)
    report.timings["tests_ms"] = round(total, 1)
    if compiled >= COMPILE_NOTE_MIN_MS and compiled >= COMPILE_SHARE_NOTE * total:
        where = " on the public tests" if hidden_ran else ""
        report.timing = (f"compile {compiled / 1000:.1f} s of your {total / 1000:.1f} s{where}: tracing and "
                         "compiling the functions your code jits (or transforms) is part of its own time")


def state_checked(loaded: LoadedProblem, reference: ReferenceOutputs) -> bool:
    """State checks: as the problem says, or by default when its reference builds an nnx.Module."""
    setting = loaded.problem.state_checks
    if setting is None:
        return reference.builds_model
    return setting is True or isinstance(setting, StateChecks)


def submission_probes(loaded: LoadedProblem, reference: ReferenceOutputs) -> dict[str, Any] | None:
    return model_checks.probe_request(loaded.problem, state=state_checked(loaded, reference))


def _base(loaded: LoadedProblem, mode: Mode, outcome: ChildOutcome) -> Report:
    stdout = clip_log(outcome.stdout, outcome.stdout_total)
    if outcome.hidden_log_bytes:
        stdout += ("\n" if stdout and not stdout.endswith("\n") else "") + HIDDEN_PRINTS_NOTE
    return Report(
        problem=loaded.id, verdict=Verdict.INTERNAL_ERROR, mode=mode,
        stdout=stdout,
        stderr=clip_log(outcome.stderr, outcome.stderr_total),
    )


# What a submission printed once the hidden tests' inputs were in its process may hold them: never shown.
HIDDEN_PRINTS_NOTE = ("[gradax: what your code printed while the hidden tests ran (stdout and stderr) is not shown; "
                      "Run shows what it prints on the public tests]")
# A hidden test's rejected result, said without the child's own description of it.
HIDDEN_REJECTED = {
    "output_limit": "Your function returned more than this problem's output limit allows (hidden test)",
    "bad_output": "Your function returned something that is not numbers and arrays (hidden test)",
}
# Exception class names a hidden test's error may show: Python's own and the libraries' (a class the submission
# defines can be named after anything, a hidden input included).
LIBRARY_ERRORS = frozenset((
    "ConcretizationTypeError", "TracerArrayConversionError", "TracerBoolConversionError",
    "TracerIntegerConversionError", "UnexpectedTracerError", "KeyReuseError", "JaxRuntimeError", "XlaRuntimeError",
    "NonConcreteBooleanIndexError", "TraceContextError", "ScopeParamShapeError", "AxisNameError",
))
BUILTIN_ERRORS = frozenset(name for name, value in vars(builtins).items()
                           if isinstance(value, type) and issubclass(value, BaseException))


def hidden_error_name(name: str) -> str:
    """`name` if it is Python's or a library's exception class, else what it is without its name."""
    return name if name in BUILTIN_ERRORS or name in LIBRARY_ERRORS else "an exception of your own class"


CHANNEL_BLAME = ("The submission wrote to the grader's result channel: {detail}. Only the grader's own messages "
                 "count, so the run was stopped; this is charged to the submission.")


def judge(loaded: LoadedProblem, cases: list[CaseInput], reference: ReferenceOutputs,
          outcome: ChildOutcome, mode: Mode, *, limits: SandboxLimits | None = None) -> Report:
    """Turn what the child did into a report. Runs in the trusted parent only.

    Every event in `outcome.messages` was validated against graders/child_events.py (schema and order), so
    nothing here trusts a field it did not check; what the channel refused is `outcome.wire_error`.
    """
    problem = loaded.problem
    report = _base(loaded, mode, outcome)
    report.total = len(cases)
    if outcome.start_error:
        log.error("sandbox start failure: %s", outcome.start_error)
        report.message = f"Grading could not start: {outcome.start_error}. This is not your fault."
        return report
    if outcome.reader_error:
        log.error("result reader failure: %s", outcome.reader_error)
        report.message = "The grader failed to read the results (a bug in gradax). This is not your fault."
        return report
    if not outcome.events("ready"):
        log.error("harness never became ready (exit %s): %s", outcome.exit_code,
                  outcome.stderr[-2000:].decode("utf-8", "replace"))
        report.stdout = report.stderr = ""
        report.message = ("The grading process failed to start"
                          + (" in time" if outcome.startup_timed_out else "") + ". This is not your fault.")
        return report

    if limits is not None:
        report.limits = limits_text.run_limits(limits)
    report.usage = limits_text.run_usage(outcome)
    if outcome.starved and not _starved_of_memory(outcome):
        # Not a verdict on the submission: it stays internal_error, which the server grades again later.
        log.warning("run stopped at its wall-clock cap after waiting %.1f s for a CPU", outcome.cpu_wait_s or 0.0)
        report.message = limits_text.machine_too_busy(outcome, limits)
        return report
    loads = outcome.events("load")
    if not loads:
        return _runtime_before_tests(report, outcome, limits)
    load = loads[0].event
    if isinstance(load, ev.LoadSyntaxError):
        report.verdict = Verdict.SYNTAX_ERROR
        report.line = load.line
        where = f" on line {report.line}" if report.line else ""
        text = f"\n    {load.text}" if load.text else ""
        report.message = f"SyntaxError{where}: {load.message}{text}"
        return report
    if isinstance(load, ev.LoadInvalid):
        report.verdict = Verdict.INVALID_SUBMISSION
        report.message = f"{load.message}. The problem asks for `{problem.signature}`."
        return report
    if isinstance(load, ev.LoadError):
        report.verdict = Verdict.RUNTIME_ERROR
        report.line = load.line
        report.message = (f"Your file raised {load.error_type} while it was being loaded:\n"
                          f"{load.traceback}")
        if out_of_memory(load.error_type, load.message):
            report.verdict = Verdict.MEMORY_LIMIT_EXCEEDED
            report.message = "Memory limit exceeded while your file was being loaded. " + report.message
        _add_pitfall(report, load.error_type, load.message)
        return _limit_verdicts(_channel_verdict(report, outcome), outcome, limits)

    started = {m.event.index for m in outcome.events("start") if isinstance(m.event, ev.Start)}
    finished = {m.event.index: m for m in outcome.events("test") if isinstance(m.event, ev.TestOk | ev.TestError
                                                                                 | ev.TestRejected)}
    submission_outputs: dict[int, Output] = {}
    stage_messages: dict[int, str] = {}  # a failed test's full stage message (by id of its report), for diagnoses
    submission_probes_by_test: dict[int, ProbeReport] = {}
    checks_state = state_checked(loaded, reference)
    for index, case in enumerate(cases):
        test = TestReport(name=case.name, public=case.public, status=TestStatus.SKIPPED, points=case.points)
        report.tests.append(test)
        msg = finished.get(index)
        if msg is None:
            if index in started:
                timed_out = (outcome.timed_out or outcome.cpu_exceeded) and not _starved_of_memory(outcome)
                test.status = TestStatus.TIMEOUT if timed_out else TestStatus.ERROR
                test.verdict, test.message = _unfinished(outcome, limits, public=case.public)
            else:
                test.message = "not run: an earlier test stopped the run"
            continue
        result = msg.event
        assert isinstance(result, ev.TestOk | ev.TestError | ev.TestRejected)
        # A hidden test's own time is the submission's to choose (it may sleep for a hidden input's value): not shown.
        test.duration_ms = result.duration_ms if case.public else None
        if isinstance(result, ev.TestError):
            test.status = TestStatus.ERROR
            test.message = f"{result.error_type}: {result.message}"
            test.traceback = result.traceback
            test.line = result.line
            test.verdict = Verdict.RUNTIME_ERROR
            if case.public:
                _add_pitfall(report, result.error_type, result.message)
            else:
                # Its message, traceback and line were written once the hidden inputs were in the child: not shown,
                # and the advice is chosen from what is shown (which advice a message selects would say it).
                shown = hidden_error_name(result.error_type)
                test.message = f"{shown} raised (hidden test)"
                test.traceback, test.line = None, None
                _add_pitfall(report, shown, "")
            if out_of_memory(result.error_type, result.message if case.public else ""):
                test.verdict = Verdict.MEMORY_LIMIT_EXCEEDED
                limit = f" (the limit is {limits.memory_mb} MiB)" if limits is not None else ""
                test.message = f"memory limit exceeded during this test: {test.message}{limit}"
            continue
        if isinstance(result, ev.TestRejected):
            test.status = TestStatus.ERROR
            test.message = f"Your function {result.message}" if case.public else HIDDEN_REJECTED[result.status]
            test.verdict = (Verdict.OUTPUT_LIMIT_EXCEEDED if result.status == "output_limit"
                            else Verdict.RUNTIME_ERROR)
            continue
        got = Output(result.tree.model_dump(exclude_none=True), msg.arrays)
        want = reference.reference.outputs.get(index)
        if want is None:
            raise ReferenceError(f"no reference output for test {case.name}")
        # The channel validated the description like every other field (graders/child_events.py).
        got_probes = ProbeReport(result.probes, msg.arrays) if result.probes is not None else None
        submission_outputs[index] = got
        if got_probes is not None:
            submission_probes_by_test[index] = got_probes
        cmp = compare(got, want, problem.tolerance, public=case.public, dtype=problem.dtype)
        ctx = StageContext(problem, got, want, got_probes, reference.reference.probes.get(index), case.public,
                           state_checked=checks_state)
        stages_start = time.monotonic()
        cmp = model_checks.staged(cmp, ctx)
        report.timings["model_stages_ms"] = round(report.timings.get("model_stages_ms", 0.0)
                                                  + (time.monotonic() - stages_start) * 1000, 3)
        test.status = TestStatus.PASSED if cmp.ok else TestStatus.FAILED
        test.verdict = None if cmp.ok else Verdict.WRONG_ANSWER
        test.message = cmp.message
        test.stage = cmp.stage
        if not cmp.ok:
            if not case.public and cmp.stage in CHECK_STAGES:
                # The model's checks name what the submission built (its attribute and class names, its errors),
                # which it may have chosen from a hidden input: a hidden test's says which check failed only, and
                # its advice comes from that (which advice the full message selects would say it too).
                test.message = model_checks.hidden_stage_message(cmp.stage)
            stage_messages[id(test)] = cmp.message if case.public else test.message
        if case.public:
            test.max_abs_error = cmp.max_abs_error
            test.max_rel_error = cmp.max_rel_error
            test.mismatched, test.elements, test.worst_index = cmp.mismatched, cmp.elements, cmp.worst_index
            test.expected, test.got = cmp.expected, cmp.got

    report.passed = sum(t.status == TestStatus.PASSED for t in report.tests)
    report.score = points_score(cases, [t.status == TestStatus.PASSED for t in report.tests])
    report.verdict = overall_verdict(report.tests, outcome)
    report.message = _summary(report, outcome, limits)
    if report.diagnosis is None:
        # The tests that ran still say which known mistake this looks like, whatever stopped the rest.
        found = _known_mistake(problem, report, reference, submission_outputs, submission_probes_by_test)
        if found is not None:
            report.diagnosis = found.message
    if report.diagnosis is None and checks_state:
        # Every shape right and the values wrong: the layers may have been built in another order (each draws its
        # keys when built). Public tests only: which layers a hidden test's model built is the submission's to choose.
        report.diagnosis = model_checks.layer_order_of_tests(
            (submission_probes_by_test.get(index), reference.reference.probes.get(index))
            for index, (case, test) in enumerate(zip(cases, report.tests, strict=False))
            if case.public and test.status == TestStatus.FAILED and test.stage in ("values", "state"))
    if report.diagnosis is None:
        # No known mistake of this problem: what the first test a dtype or model stage failed reveals.
        for test in report.tests:
            pitfall = (diagnose.stage_pitfall_for(test.stage, stage_messages.get(id(test), test.message))
                       if test.status == TestStatus.FAILED else None)
            if pitfall is not None:
                report.diagnosis = pitfall.advice
                break
    if report.verdict != Verdict.ACCEPTED:
        report.hints = list(problem.hints[:1])
    return report


def _known_mistake(problem: Problem, report: Report, reference: ReferenceOutputs, outputs: dict[int, Output],
                   probes: dict[int, ProbeReport]) -> KnownMistake | None:
    """Match known mistakes by outputs when a test failed on its values, or by the model stage that failed
    first (state, gradients, ...) among the mistakes only that stage rejects."""
    failed = [t for t in report.tests if t.status == TestStatus.FAILED]
    if not failed:
        return None
    known = [m for m in problem.known_mistakes if m.id in reference.mistakes]
    check_stage = next((t.stage for t in failed if t.stage in CHECK_STAGES), None)
    if check_stage is not None:
        found = diagnose.matching_check_mistake(
            check_stage, problem, outputs, probes,
            [(m, reference.mistakes[m.id].outputs, reference.mistakes[m.id].probes) for m in known])
        if found is not None:
            return found
    by_outputs = [(m, reference.mistakes[m.id].outputs) for m in known if m.rejected_by == "outputs"]
    return diagnose.matching_mistake(outputs, by_outputs, problem.tolerance)


def overall_verdict(tests: list[TestReport], outcome: ChildOutcome) -> Verdict:
    """The verdict of the first failing test in test order; the run's own fate only when none failed.

    A submission that answered four tests wrongly and then ran out of time is told `wrong_answer` (what
    it must fix first), not `time_limit_exceeded`. Tests that never started (the run was stopped before)
    do not count. When every test that ran passed, the run's limits decide: all passed and nothing was
    exceeded is `accepted`.
    """
    if outcome.wire_error:
        # The submission wrote on the result channel: no result of this run can be trusted, and what
        # the student must fix is that.
        return Verdict.RUNTIME_ERROR
    for test in tests:
        if test.verdict is not None:
            return test.verdict
    stopped_by = _limit_verdict(outcome)
    if stopped_by is not None:
        return stopped_by
    if tests and all(t.status == TestStatus.PASSED for t in tests):
        return Verdict.ACCEPTED
    return Verdict.RUNTIME_ERROR


def _limit_verdict(outcome: ChildOutcome) -> Verdict | None:
    """The limit that stopped the run, if one did: the run's verdict and an unfinished test's judge alike."""
    if _starved_of_memory(outcome):
        return Verdict.MEMORY_LIMIT_EXCEEDED
    if outcome.timed_out or outcome.cpu_exceeded:
        return Verdict.TIME_LIMIT_EXCEEDED
    if outcome.result_overflow:
        return Verdict.OUTPUT_LIMIT_EXCEEDED
    return None


def _channel_verdict(report: Report, outcome: ChildOutcome) -> Report:
    """A load error followed by writes on the channel: the channel is what stopped the run."""
    if outcome.wire_error:
        report.verdict = Verdict.RUNTIME_ERROR
        report.message = CHANNEL_BLAME.format(detail=outcome.wire_error) + "\n" + report.message
    return report


def _add_pitfall(report: Report, error_type: str, message: str) -> None:
    if report.diagnosis:
        return
    pitfall = diagnose.pitfall_for(error_type, message)
    if pitfall is not None:
        report.diagnosis = pitfall.advice


def _unfinished(outcome: ChildOutcome, limits: SandboxLimits | None, *, public: bool) -> tuple[Verdict, str]:
    """What stopped a test that started and never reported: its verdict and the test's message. How a hidden test's
    process ended (its exit status, the signal) is the submission's to choose, from a hidden input: not said."""
    stopped_by = _limit_verdict(outcome)
    if stopped_by == Verdict.MEMORY_LIMIT_EXCEEDED:
        return stopped_by, f"memory limit exceeded during this test: {limits_text.memory_phrase(outcome, limits)}"
    if stopped_by == Verdict.TIME_LIMIT_EXCEEDED:
        return stopped_by, f"time limit exceeded during this test: your code {limits_text.time_phrase(outcome, limits)}"
    if stopped_by == Verdict.OUTPUT_LIMIT_EXCEEDED:
        return stopped_by, f"output limit exceeded during this test: {limits_text.output_phrase(outcome, limits)}"
    if outcome.wire_error:
        return Verdict.RUNTIME_ERROR, "the run was stopped: the submission wrote to the grader's result channel"
    if not public:
        return Verdict.RUNTIME_ERROR, ("the process ended during this test, before returning a result (a hidden test: "
                                       "its exit status or signal is not shown)")
    return Verdict.RUNTIME_ERROR, f"{_exit_description(outcome.exit_code)} during this test, before returning a result"


# Allocations the sandbox refused: Python's MemoryError (numpy's "Unable to allocate ...") and XLA's. Asked for at once,
# they fail before the memory is used, where a slower growth is stopped by the limit itself; both are the program
# asking for more memory than it may use.
XLA_OUT_OF_MEMORY = re.compile(r"^RESOURCE_EXHAUSTED: Out of memory")


def out_of_memory(error_type: str, message: str) -> bool:
    """Whether an error a test raised is an allocation refused for want of memory. A hidden test's is judged by its
    class alone (`message` ""): which verdict a message selects would say something of it."""
    if error_type == "MemoryError":
        return True
    return error_type in ("JaxRuntimeError", "XlaRuntimeError") and bool(XLA_OUT_OF_MEMORY.match(message))


def _ended_between_tests(report: Report, outcome: ChildOutcome) -> str:
    """Why a run whose every finished test passed stopped short: it ended between two tests, with no test running
    (a thread or signal handler of the program's ended it, or it took the descriptors the grader uses). How it ended
    is said only while no hidden input can have been in the process."""
    done = [t for t in report.tests if t.status == TestStatus.PASSED]
    following = next((t for t in report.tests if t.status == TestStatus.SKIPPED), None)
    after = f"after test '{done[-1].name}'" if done else "after your file was loaded"
    before = f", before test '{following.name}' started" if following is not None else ""
    if (following is not None and not following.public) or outcome.held_back_sent:
        how = "the process ended (how is not shown: the hidden tests' inputs may have been in it)"
    else:
        how = _exit_description(outcome.exit_code)
    return (f"The run ended {after}{before}: {how}. No test was running: something your code started (a thread, "
            "a timer, a signal handler) ended it, or it read, closed or replaced a descriptor the grader uses "
            "(standard input is empty while grading; the tests arrive on a channel of the grader's).")


def _runtime_before_tests(report: Report, outcome: ChildOutcome, limits: SandboxLimits | None) -> Report:
    report.verdict = Verdict.RUNTIME_ERROR
    if outcome.wire_error:
        report.message = (CHANNEL_BLAME.format(detail=outcome.wire_error)
                          + " (It happened while the file was being loaded.)")
    elif outcome.result_overflow:
        report.verdict = Verdict.OUTPUT_LIMIT_EXCEEDED
        report.message = ("Output limit exceeded while your file was being loaded: "
                          f"{limits_text.output_phrase(outcome, limits)}.")
    elif _limit_verdict(outcome) is None:
        # Only when no limit stopped it: the grader's own kill at a limit (SIGKILL) is not the file's doing.
        report.message = (f"Your file stopped the grading process: {_exit_description(outcome.exit_code)} "
                          "while it was being loaded.")
    return _limit_verdicts(report, outcome, limits)


def _starved_of_memory(outcome: ChildOutcome) -> bool:
    """Killed by the OOM killer, or stopped by time while pinned at the memory limit (the kernel kept
    reclaiming instead of killing): either way memory, not speed, is what the student must fix."""
    return outcome.memory_exceeded or (
        (outcome.timed_out or outcome.cpu_exceeded) and outcome.memory_limit_reached)


def _limit_verdicts(report: Report, outcome: ChildOutcome, limits: SandboxLimits | None) -> Report:
    stopped_by = _limit_verdict(outcome)
    if stopped_by == Verdict.MEMORY_LIMIT_EXCEEDED:
        report.verdict = Verdict.MEMORY_LIMIT_EXCEEDED
        report.message = ("Memory limit exceeded while your file was being loaded: "
                          f"{limits_text.memory_phrase(outcome, limits)}.")
    elif stopped_by == Verdict.TIME_LIMIT_EXCEEDED:
        report.verdict = Verdict.TIME_LIMIT_EXCEEDED
        report.message = "\n".join(filter(None, ["Time limit exceeded while your file was being loaded: your code "
                                                  f"{limits_text.time_phrase(outcome, limits)}.", report.message]))
    return report


LIMIT_VERDICTS = (Verdict.TIME_LIMIT_EXCEEDED, Verdict.MEMORY_LIMIT_EXCEEDED, Verdict.OUTPUT_LIMIT_EXCEEDED)


def _summary(report: Report, outcome: ChildOutcome, limits: SandboxLimits | None) -> str:
    """The report's message: the first failure, and what stopped the run if a later test was cut short."""
    v = report.verdict
    if v == Verdict.ACCEPTED:
        return f"All {report.total} tests passed."
    if v == Verdict.RUNTIME_ERROR and outcome.wire_error:
        blame = CHANNEL_BLAME.format(detail=outcome.wire_error)
        return f"{blame} {report.passed} of {report.total} tests passed before that."
    first = next((t for t in report.tests if t.verdict is not None), None)
    if first is None:  # no test failed on its own: the run as a whole was stopped
        if v == Verdict.TIME_LIMIT_EXCEEDED:
            return f"Time limit exceeded: your code {limits_text.time_phrase(outcome, limits)}."
        if v == Verdict.MEMORY_LIMIT_EXCEEDED:
            return f"Memory limit exceeded: {limits_text.memory_phrase(outcome, limits)}."
        if v == Verdict.OUTPUT_LIMIT_EXCEEDED:
            return f"Output limit exceeded: {limits_text.output_phrase(outcome, limits)}."
        return f"{report.passed} of {report.total} tests passed. {_ended_between_tests(report, outcome)}"
    text = f"{report.passed} of {report.total} tests passed. First failure, test '{first.name}': {first.message}"
    stopped = next((t for t in report.tests if t is not first and t.verdict in LIMIT_VERDICTS), None)
    if stopped is not None:
        text += f"\nThe run was then stopped during test '{stopped.name}': {stopped.message}."
    return text
