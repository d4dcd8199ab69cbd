"""`gradax check`: a problem is valid when its schema holds, its reference solution (and every listed
alternative) is accepted by its own tests through the real grading path, every known mistake is rejected by
the hidden tests (by their outputs, or by the model stage it names in `rejected_by` while its outputs pass),
and every dimension the statement lets vary takes at least two values across the hidden tests.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graders import model_checks
from graders.cases import CaseInput, build_cases
from graders.compare import outputs_match
from graders.engine import Grader, state_checked
from graders.executor import Executor, make_executor
from graders.model_checks import StageContext
from graders.prepare import default_workers
from graders.problem import (
    KnownMistake,
    LoadedProblem,
    ProblemBank,
    ProblemError,
    enabled_stages,
    load_problem,
)
from graders.reference import ProgramOutputs, ReferenceError, ReferenceOutputs
from graders.settings import GraderSettings
from graders.yaml_files import Loc, line_of

STAGE_FUNCTIONS = {
    "state": model_checks.state_stage,
    "gradients": model_checks.gradients_stage,
    "retrace": model_checks.retrace_stage,
    "batch_invariance": model_checks.batch_invariance_stage,
    "eval_determinism": model_checks.eval_determinism_stage,
}


@dataclass
class CheckResult:
    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # stage -> the known mistake whose outputs pass and which that stage rejects: the stage's proof.
    proofs: dict[str, str] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def problem_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.glob("*.yaml"))
        else:
            files.append(path)
    return files


def check_paths(paths: list[Path], settings: GraderSettings, executor: Executor | None = None,
                workers: int | None = None) -> list[CheckResult]:
    """Check every problem file, `workers` at a time (default: one per core), grading through `executor`.

    Without one, `check_executor` chooses, started for the run and closed after it.
    """
    files = problem_files(paths)
    own = executor is None
    if executor is None:
        executor = check_executor(settings, len(files))
    try:
        with ThreadPoolExecutor(max(1, min(len(files) or 1, workers or default_workers()))) as pool:
            return list(pool.map(lambda path: _check_file(path, settings, executor), files))
    finally:
        if own:
            executor.close()


def check_executor(settings: GraderSettings, files: int) -> Executor:
    """The warm pool (the server's executor) for several problems, or when GRADAX_POOL=warm is set: the
    references and alternatives are graded in warm children instead of a fresh Python each (~2-3 CPU-s of
    importing jax). One problem alone grades cold: starting a zygote and recording the problem's compile
    profile for the pool would cost more than the one or two gradings it saves.

    A check grades each problem's reference and alternatives once, so its pool forks no child ahead of a
    submission (`pool_prefork` 0): a child kept ready for a next submission of the problem that never comes
    would cost its warm-up (0.3-1.2 CPU-s) for nothing, twice per problem at the default."""
    warm = files > 1 or ("pool" in settings.model_fields_set and settings.pool == "warm")
    return make_executor(settings.model_copy(update={"pool_prefork": 0}), pool=None if warm else "cold")


def _check_file(path: Path, settings: GraderSettings, executor: Executor) -> CheckResult:
    start = time.monotonic()
    result = CheckResult(path)
    try:
        loaded = load_problem(path)
    except ProblemError as exc:
        result.errors += exc.errors
    except OSError as exc:
        result.errors.append(f"{path}: cannot read: {exc.strerror}")
    else:
        check_problem(loaded, settings, result, executor)
    result.duration_s = time.monotonic() - start
    return result


def _function_line(source: str, function: str) -> int:
    """The line of `def function` in a reference solution (1 when it cannot be found)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return exc.lineno or 1
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return node.lineno
    return 1


def _traceback_line(text: str | None) -> int | None:
    """The last line of the checked program named in a harness traceback ('File "submission.py", line N')."""
    found = re.findall(r'File "submission\.py", line (\d+)', text or "")
    return int(found[-1]) if found else None


def _as_the_reference(text: str, reference_path: Path) -> str:
    """A harness traceback of the reference, as its author reads it: the child names every checked program
    "submission.py" and says "your code", the words a student sees."""
    return (text.replace('File "submission.py"', f'File "{reference_path.name}"')
            .replace("(most recent call last, your code only)", "(most recent call last, the reference only)"))


# Told what a check is doing as it goes (a background upload check shows it): what, as words, step, steps.
StageCallback = Callable[[str, int, int], None]


def check_problem(loaded: LoadedProblem, settings: GraderSettings, result: CheckResult,
                  executor: Executor | None = None, on_stage: StageCallback | None = None) -> None:
    """Errors are located "file:line: message" like schema errors, so an upload page can show File and Line:
    reference failures at the reference's line (or its `def`), known mistakes and tests at their YAML entry."""
    problem = loaded.problem
    steps = 2 + len(problem.alternatives)

    def say(what: str, step: int) -> None:
        if on_stage is not None:
            on_stage(what, step, steps)

    text = loaded.source.decode("utf-8", errors="replace")
    reference_text = loaded.reference_source.decode("utf-8", errors="replace")

    def at(*loc: int | str) -> str:
        return f"{loaded.path}:{line_of(text, loc)}"

    def ref_at(line: int | None = None) -> str:
        return f"{loaded.reference_path}:{line or _function_line(reference_text, problem.function)}"

    bank = ProblemBank.__new__(ProblemBank)
    bank.directory, bank.problems, bank.errors = loaded.path.parent, {loaded.id: loaded}, {}
    grader = Grader(bank, settings, executor=executor)
    try:
        cases = build_cases(problem)
    except ValueError as exc:
        result.errors.append(f"{at('tests')}: tests: {exc}")
        return
    if sum(not c.public for c in cases) < 1:
        result.warnings.append("no hidden tests: known mistakes cannot be told apart from the reference")
    # Through a warm pool, the children grade with the problem's compile profile: prepared as `gradax prepare`
    # does (the trusted run that computes the outputs records it too: `Grader.reference_for`).
    mistakes = len(problem.known_mistakes)
    say(f"running the reference and its {mistakes} known mistake{'s' if mistakes != 1 else ''} on every test "
          "(trusted runner)", 1)
    try:
        _, ref = grader.reference_for(loaded)
    except ReferenceError as exc:
        result.errors.append(f"{ref_at()}: the reference runner failed: {exc}")
        return
    if ref.reference.load_error:
        result.errors.append(f"{ref_at(_traceback_line(ref.reference.load_error))}: the reference does not load: "
                             f"{_as_the_reference(ref.reference.load_error, loaded.reference_path)}")
        return
    for index, message in sorted(ref.reference.errors.items()):
        result.errors.append(f"{ref_at()}: the reference raised on test {cases[index].name!r}: "
                             f"{_as_the_reference(message, loaded.reference_path)}")
    if result.errors:
        return
    say("grading the reference in the sandbox, as a student's submission", 2)
    report = grader.grade_loaded(loaded, loaded.reference_source, mode="submit")
    if not report.accepted:
        failing = [f"{t.name}: {t.message}" for t in report.tests if t.status != "passed"][:3]
        lines = [t.line for t in report.tests if t.line] + ([report.line] if report.line else [])
        result.errors.append(
            f"{ref_at(lines[0] if lines else None)}: the reference solution is not accepted by its own tests "
            f"through the sandbox ({report.verdict.value}: {report.message}) {failing}"
        )
    elif report.timings.get("run_ms", 0) > problem.limits.time_s * 1000 * 0.5:
        result.warnings.append(f"the reference takes {report.timings['run_ms']:.0f} ms, over half the time limit")
    for stage, index, message in _reference_probe_errors(ref):
        result.errors.append(f"{ref_at()}: the reference's {stage} check could not run on test "
                             f"{cases[index].name!r}: {message}")
    for m_index, mistake in enumerate(problem.known_mistakes):
        outputs = ref.mistakes.get(mistake.id)
        label = f"{at('known_mistakes', m_index, 'id')}: known_mistakes.{m_index}: known mistake {mistake.id!r}"
        if outputs is None or outputs.load_error:
            result.errors.append(f"{label} does not load: {outputs.load_error if outputs else 'missing'}")
            continue
        if mistake.rejected_by == "outputs":
            _check_output_mistake(label, cases, ref, outputs, loaded, result)
        else:
            _check_stage_mistake(label, mistake, cases, ref, outputs, loaded, result)
    for stage in [s for s in enabled_stages(problem) if s != "state" or state_checked(loaded, ref)]:
        if stage not in result.proofs:
            result.warnings.append(f"no known mistake shows what the {stage} check rejects while outputs pass "
                                   f"(add one with `rejected_by: {stage}`)")
    for a_index, alternative in enumerate(problem.alternatives):
        say(f"grading alternative {alternative.id!r} in the sandbox", 3 + a_index)
        alt_report = grader.grade_loaded(loaded, alternative.code, mode="submit")
        if not alt_report.accepted:
            failing = [f"{t.name}: {t.message}" for t in alt_report.tests if t.status != "passed"][:3]
            result.errors.append(f"{at('alternatives', a_index, 'id')}: alternatives.{a_index}: alternative "
                                 f"{alternative.id!r} is not accepted ({alt_report.verdict.value}: "
                                 f"{alt_report.message}) {failing}")
    result.errors += located_dimension_errors(loaded, cases)
    if len(problem.known_mistakes) < 3:
        result.warnings.append(f"only {len(problem.known_mistakes)} known mistakes (3 or more teach best)")
    try:
        compile(problem.starter_code, "starter.py", "exec")
    except SyntaxError as exc:
        line = line_of(text, ("starter_code",)) + (exc.lineno or 1)
        result.errors.append(f"{loaded.path}:{line}: starter_code: does not compile: {exc.msg}")


def _reference_probe_errors(ref: ReferenceOutputs) -> list[tuple[str, int, str]]:
    """Probes the reference itself could not complete: a check it fails cannot judge anyone else."""
    found = []
    for index, report in sorted(ref.reference.probes.items()):
        for stage in ("state", "gradients", "batch_invariance", "eval_determinism"):
            part = getattr(report.probes, stage)
            if part is not None and part.error:
                found.append((stage, index, part.error))
    return found


def _check_output_mistake(label: str, cases: list[CaseInput], ref: ReferenceOutputs, outputs: ProgramOutputs,
                          loaded: LoadedProblem, result: CheckResult) -> None:
    problem = loaded.problem
    killed_public, killed_hidden = False, False
    for index, case in enumerate(cases):
        want = ref.reference.outputs[index]
        got = outputs.outputs.get(index)
        differs = got is None or not outputs_match(got, want, problem.tolerance)
        if differs and case.public:
            killed_public = True
        if differs and not case.public:
            killed_hidden = True
    if not killed_public and not killed_hidden:
        result.errors.append(f"{label} passes every test: the tests cannot tell it apart from the reference")
    elif not killed_hidden:
        result.errors.append(f"{label} is rejected only by public tests: the hidden tests must reject it too")
    if not outputs.outputs:
        result.warnings.append(f"{label} raises on every test, so no submission can be diagnosed by it")


def _check_stage_mistake(label: str, mistake: KnownMistake, cases: list[CaseInput], ref: ReferenceOutputs,
                         outputs: ProgramOutputs, loaded: LoadedProblem, result: CheckResult) -> None:
    """A mistake `rejected_by` a stage: output-only grading accepts it, and that stage rejects it."""
    problem = loaded.problem
    stage = mistake.rejected_by
    if stage == "state" and not state_checked(loaded, ref):
        result.errors.append(f"{label}: state checks are off for this problem (its reference builds no nnx.Module)")
        return
    differing = [c.name for i, c in enumerate(cases) if i not in outputs.outputs
                 or not outputs_match(outputs.outputs[i], ref.reference.outputs[i], problem.tolerance)]
    if differing:
        result.errors.append(f"{label} differs from the reference in its outputs (test {differing[0]!r}), so it does "
                             f"not show what the {stage} check adds: output-only grading rejects it already")
        return
    rejected_hidden = False
    for index, case in enumerate(cases):
        ctx = StageContext(problem, outputs.outputs[index], ref.reference.outputs[index],
                           outputs.probes.get(index), ref.reference.probes.get(index), case.public)
        if STAGE_FUNCTIONS[stage](ctx) is not None and not case.public:
            rejected_hidden = True
    if not rejected_hidden:
        result.errors.append(f"{label} is not rejected by the {stage} check on any hidden test")
    else:
        result.proofs.setdefault(stage, mistake.id)


def located_dimension_errors(loaded: LoadedProblem, cases: list[CaseInput]) -> list[str]:
    """`dimension_variety_errors` as `gradax check` prints them: "file:line: message", at the argument."""
    text = loaded.source.decode("utf-8", errors="replace")
    return [f"{loaded.path}:{line_of(text, loc)}: {message}"
            for loc, message in dimension_variety_errors(loaded, cases)]


def dimension_variety_errors(loaded: LoadedProblem, cases: list[CaseInput]) -> list[tuple[Loc, str]]:
    """Every dimension the statement lets vary must take two values across the hidden tests.

    The named dimensions of the array arguments' `shape` (`[batch, height, width, channels]`; numbers are
    fixed by the statement, `...` is any number of axes) and every scalar argument are such dimensions.
    An answer that hard-codes one that never changes (1 input channel, square images, 2 heads) passes.
    Each error is located at the argument that declares the dimension first.
    """
    problem = loaded.problem
    hidden = [c for c in cases if not c.public]
    if not hidden:
        return []
    values: dict[str, set[float]] = {}
    declared: dict[str, Loc] = {}
    errors: list[tuple[Loc, str]] = []
    for position, spec in enumerate(problem.args):
        if spec.kind == "scalar":
            declared.setdefault(f"argument `{spec.name}`", ("args", position, "name"))
            values.setdefault(f"argument `{spec.name}`", set()).update(float(c.args[position]) for c in hidden)
            continue
        if not spec.shape:
            continue
        loc: Loc = ("args", position, "shape")
        if "..." in spec.shape:
            # Named dimensions before `...` count from the front, after it from the back.
            split = spec.shape.index("...")
            front, back = spec.shape[:split], spec.shape[split + 1:]
        else:
            front, back = spec.shape, []
        for case in hidden:
            arr = case.args[position]
            if not isinstance(arr, np.ndarray):
                continue
            ndim = arr.ndim
            if ("..." not in spec.shape and ndim != len(spec.shape)) or ndim < len(front) + len(back):
                errors.append((loc, f"args.{position}.shape names {len(spec.shape)} dimensions of `{spec.name}` "
                                    f"but test {case.name!r} gives {ndim}"))
                break
            dims = list(zip(front, arr.shape[:len(front)], strict=True))
            dims += list(zip(back, arr.shape[ndim - len(back):], strict=True)) if back else []
            for name, size in dims:
                if isinstance(name, str):
                    declared.setdefault(f"dimension `{name}`", loc)
                    values.setdefault(f"dimension `{name}`", set()).add(float(size))
    for name, seen in values.items():
        if len(seen) < 2:
            errors.append((declared[name], f"{name} has one value in every test: an answer that hard-codes it passes "
                                           "(the hidden tests must give it two values at least)"))
    return errors
