"""`gradax check`: a problem is valid when its schema holds, its reference solution is accepted by
its own tests through the real grading path, and every known mistake is rejected by the hidden tests.
"""

from __future__ import annotations

import ast
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from graders.cases import build_cases
from graders.compare import outputs_match
from graders.engine import Grader
from graders.problem import LoadedProblem, ProblemBank, ProblemError, line_of, load_problem
from graders.reference import ReferenceError
from graders.settings import GraderSettings


@dataclass
class CheckResult:
    path: Path
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
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


def check_paths(paths: list[Path], settings: GraderSettings) -> list[CheckResult]:
    results = []
    for path in problem_files(paths):
        start = time.monotonic()
        result = CheckResult(path)
        try:
            loaded = load_problem(path)
        except ProblemError as exc:
            result.errors += exc.errors
        except OSError as exc:
            result.errors.append(f"{path}: cannot read: {exc.strerror}")
        else:
            check_problem(loaded, settings, result)
        result.duration_s = time.monotonic() - start
        results.append(result)
    return results


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


def check_problem(loaded: LoadedProblem, settings: GraderSettings, result: CheckResult) -> None:
    """Errors are located "file:line: message" like schema errors, so an upload page can show File and Line:
    reference failures at the reference's line (or its `def`), known mistakes and tests at their YAML entry."""
    problem = loaded.problem
    text = loaded.source.decode("utf-8", errors="replace")
    reference_text = loaded.reference_source.decode("utf-8", errors="replace")

    def at(*loc: int | str) -> str:
        return f"{loaded.path}:{line_of(text, loc)}"

    def ref_at(line: int | None = None) -> str:
        return f"{loaded.reference_path}:{line or _function_line(reference_text, problem.function)}"

    bank = ProblemBank.__new__(ProblemBank)
    bank.directory, bank.problems, bank.errors = loaded.path.parent, {loaded.id: loaded}, {}
    grader = Grader(bank, settings)
    try:
        cases = build_cases(problem)
    except ValueError as exc:
        result.errors.append(f"{at('tests')}: tests: {exc}")
        return
    if sum(not c.public for c in cases) < 1:
        result.warnings.append("no hidden tests: known mistakes cannot be told apart from the reference")
    try:
        ref = grader.references.get(loaded, cases)
    except ReferenceError as exc:
        result.errors.append(f"{ref_at()}: the reference runner failed: {exc}")
        return
    if ref.reference.load_error:
        result.errors.append(f"{ref_at(_traceback_line(ref.reference.load_error))}: the reference does not load: "
                             f"{ref.reference.load_error}")
        return
    for index, message in sorted(ref.reference.errors.items()):
        result.errors.append(f"{ref_at()}: the reference raised on test {cases[index].name!r}: {message}")
    if result.errors:
        return
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
    for m_index, mistake in enumerate(problem.known_mistakes):
        outputs = ref.mistakes.get(mistake.id)
        label = f"{at('known_mistakes', m_index, 'id')}: known_mistakes.{m_index}: known mistake {mistake.id!r}"
        if outputs is None or outputs.load_error:
            result.errors.append(f"{label} does not load: {outputs.load_error if outputs else 'missing'}")
            continue
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
    if len(problem.known_mistakes) < 3:
        result.warnings.append(f"only {len(problem.known_mistakes)} known mistakes (3 or more teach best)")
    try:
        compile(problem.starter_code, "starter.py", "exec")
    except SyntaxError as exc:
        line = line_of(text, ("starter_code",)) + (exc.lineno or 1)
        result.errors.append(f"{loaded.path}:{line}: starter_code: does not compile: {exc.msg}")
