"""`gradax check`: a problem is valid when its schema holds, its reference solution is accepted by
its own tests through the real grading path, and every known mistake is rejected by the hidden tests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from graders.cases import build_cases
from graders.compare import outputs_match
from graders.engine import Grader
from graders.problem import LoadedProblem, ProblemBank, ProblemError, load_problem
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


def check_problem(loaded: LoadedProblem, settings: GraderSettings, result: CheckResult) -> None:
    problem = loaded.problem
    where = f"{loaded.path}"
    bank = ProblemBank.__new__(ProblemBank)
    bank.directory, bank.problems, bank.errors = loaded.path.parent, {loaded.id: loaded}, {}
    grader = Grader(bank, settings)
    try:
        cases = build_cases(problem)
    except ValueError as exc:
        result.errors.append(f"{where}: tests: {exc}")
        return
    if sum(not c.public for c in cases) < 1:
        result.warnings.append("no hidden tests: known mistakes cannot be told apart from the reference")
    try:
        ref = grader.references.get(loaded, cases)
    except ReferenceError as exc:
        result.errors.append(f"{loaded.reference_path}: the reference runner failed: {exc}")
        return
    if ref.reference.load_error:
        result.errors.append(f"{loaded.reference_path}: the reference does not load: {ref.reference.load_error}")
        return
    for index, message in sorted(ref.reference.errors.items()):
        result.errors.append(f"{loaded.reference_path}: the reference raised on test {cases[index].name!r}: {message}")
    if result.errors:
        return
    report = grader.grade_loaded(loaded, loaded.reference_source, mode="submit")
    if not report.accepted:
        failing = [f"{t.name}: {t.message}" for t in report.tests if t.status != "passed"][:3]
        result.errors.append(
            f"{loaded.reference_path}: the reference solution is not accepted by its own tests through the "
            f"sandbox ({report.verdict.value}: {report.message}) {failing}"
        )
    elif report.timings.get("run_ms", 0) > problem.limits.time_s * 1000 * 0.5:
        result.warnings.append(f"the reference takes {report.timings['run_ms']:.0f} ms, over half the time limit")
    for mistake in problem.known_mistakes:
        outputs = ref.mistakes.get(mistake.id)
        label = f"{where}: known mistake {mistake.id!r}"
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
        result.errors.append(f"{where}: starter_code does not compile: {exc}")
