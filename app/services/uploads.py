"""Instructor uploads: a problem YAML and its reference solution, validated before anything is written.

Errors keep the engine's "file:line: field: message" form so the page can show them by line. Files land in
the configured problems directory and its sibling `reference_solutions/`, and only replace existing files
when asked to.
"""

from __future__ import annotations

import ast
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from graders.check import CheckResult, StageCallback, check_problem
from graders.executor import Executor
from graders.problem import ID_PATTERN, ProblemError, load_problem, parse_problem, reference_path_for
from graders.settings import GraderSettings
from graders.yaml_files import data_or_none

PROBLEM_NAME = "problem.yaml"
REFERENCE_NAME = "reference.py"
LINE = re.compile(r"^(?P<file>[^:]*):(?P<line>\d+): (?P<message>.*)$", re.S)


@dataclass
class UploadError:
    file: str
    line: int | None
    message: str

    @classmethod
    def parse(cls, text: str) -> UploadError:
        match = LINE.match(text)
        if match is None:
            return cls(file="", line=None, message=text)
        return cls(file=match["file"], line=int(match["line"]), message=match["message"])


@dataclass
class UploadResult:
    problem_id: str | None = None
    errors: list[UploadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def target_paths(problems_dir: Path, problem_id: str) -> tuple[Path, Path]:
    """Where the files of `problem_id` go; refuses anything that would leave the two directories."""
    if not re.match(ID_PATTERN, problem_id):
        raise ValueError(f"{problem_id!r} is not a valid problem id")
    root = problems_dir.resolve()
    problem_path = (root / f"{problem_id}.yaml").resolve()
    reference_path = reference_path_for(problem_path, problem_id).resolve()
    if problem_path.parent != root or reference_path.parent != root.parent / "reference_solutions":
        raise ValueError(f"{problem_id!r} would be written outside the problems directory")
    return problem_path, reference_path


def _declared_function(yaml_text: str) -> str | None:
    """The `function` field of a YAML that may not validate, so the reference can be checked in the same round."""
    data = data_or_none(yaml_text)  # bounded like the problem parser: this runs on a file that failed it
    function = data.get("function") if isinstance(data, dict) else None
    return function if isinstance(function, str) else None


def validate(yaml_text: str, reference_text: str) -> UploadResult:
    """Schema and semantic checks of the YAML, and that the reference compiles and defines the function: every
    error of both files in one round, so an instructor never fixes one batch only to meet the next."""
    result = UploadResult()
    problem = None
    try:
        problem = parse_problem(yaml_text, Path(PROBLEM_NAME))
    except ProblemError as exc:
        result.errors += [UploadError.parse(e) for e in exc.errors]
    function = problem.function if problem is not None else _declared_function(yaml_text)
    if not reference_text.strip():
        result.errors.append(UploadError(REFERENCE_NAME, 1, "the reference solution is empty"))
    else:
        try:
            tree = ast.parse(reference_text, REFERENCE_NAME)
        except SyntaxError as exc:
            result.errors.append(UploadError(REFERENCE_NAME, exc.lineno or 1, f"syntax error: {exc.msg}"))
        else:
            defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            if function is not None and function not in defined:
                result.errors.append(UploadError(REFERENCE_NAME, 1, f"does not define the function {function!r}"))
    if problem is not None:
        result.problem_id = problem.id
    return result


def run_check(yaml_text: str, reference_text: str, problem_id: str, settings: GraderSettings,
              executor: Executor | None = None, on_stage: StageCallback | None = None) -> CheckResult:
    """`gradax check` on a scratch copy: the reference must be accepted through the sandbox and every known
    mistake rejected. Through the server's warm pool (`executor`) the reference and alternatives are graded in
    warm children, and the one trusted run that computes the outputs records the compile profile too: both are
    cached by content, so the problem, once written, is already prepared for its first student. Without one, a
    fresh sandboxed Python per grading (seconds each)."""
    with tempfile.TemporaryDirectory(prefix="gradax-upload-") as tmp:
        problem_path, reference_path = target_paths(Path(tmp) / "problems", problem_id)
        problem_path.parent.mkdir()
        reference_path.parent.mkdir()
        problem_path.write_text(yaml_text, encoding="utf-8")
        reference_path.write_text(reference_text, encoding="utf-8")
        result = CheckResult(problem_path)
        check_problem(load_problem(problem_path), settings, result, executor, on_stage)
        # Scratch paths mean nothing to the instructor: name the uploaded files instead.
        rename = {str(problem_path): PROBLEM_NAME, str(reference_path): REFERENCE_NAME}
        for attr in ("errors", "warnings"):
            messages = getattr(result, attr)
            for old, new in rename.items():
                messages = [m.replace(old, new) for m in messages]
            setattr(result, attr, messages)
        return result


def normalized(text: str) -> str:
    """Windows line ends as "\\n" (a file saved on Windows): the files are written, hashed and located by line."""
    return text.replace("\r\n", "\n")


def validate_upload(problems_dir: Path, yaml_text: str, reference_text: str, *, replace: bool) -> UploadResult:
    """Everything about an upload that takes no grading (milliseconds): both files' text, schema and reference,
    where they would be written, and whether that would overwrite a problem unasked. Texts as `normalized`."""
    for name, text in ((PROBLEM_NAME, yaml_text), (REFERENCE_NAME, reference_text)):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates survive JSON decoding but cannot be written
            line = text.count("\n", 0, exc.start) + 1
            return UploadResult(errors=[UploadError(name, line, "not valid UTF-8 text")])
    result = validate(yaml_text, reference_text)
    if not result.ok or result.problem_id is None:
        return result
    _check_target(problems_dir, result, replace=replace)
    return result


def _check_target(problems_dir: Path, result: UploadResult, *, replace: bool) -> tuple[Path, Path] | None:
    assert result.problem_id is not None
    try:
        problem_path, reference_path = target_paths(problems_dir, result.problem_id)
    except ValueError as exc:
        result.errors.append(UploadError(PROBLEM_NAME, 1, f"id: {exc}"))
        return None
    existing = [p for p in (problem_path, reference_path) if p.exists()]
    if existing and not replace:
        result.errors.append(UploadError(PROBLEM_NAME, 1, f"id: problem {result.problem_id!r} already exists; "
                                         "tick 'replace' to overwrite it"))
        return None
    return problem_path, reference_path


def check_upload(result: UploadResult, yaml_text: str, reference_text: str, settings: GraderSettings,
                 executor: Executor | None = None, on_stage: StageCallback | None = None) -> None:
    """`gradax check` of a validated upload: its errors and warnings join `result`."""
    assert result.problem_id is not None
    checked = run_check(yaml_text, reference_text, result.problem_id, settings, executor, on_stage)
    result.checked = True
    result.errors += [UploadError.parse(e) for e in checked.errors]
    result.warnings += checked.warnings


def write_upload(problems_dir: Path, result: UploadResult, yaml_text: str, reference_text: str, *,
                 replace: bool) -> None:
    """Write both files of a validated (and checked) upload, unless a problem of its id appeared meanwhile and
    `replace` was not asked: then that is its error and nothing is written."""
    paths = _check_target(problems_dir, result, replace=replace)
    if paths is None:
        return
    problem_path, reference_path = paths
    problem_path.parent.mkdir(parents=True, exist_ok=True)
    reference_path.parent.mkdir(parents=True, exist_ok=True)
    # Reference first: a problem file without its reference would be skipped by the next reload.
    reference_path.write_text(reference_text, encoding="utf-8")
    problem_path.write_text(yaml_text, encoding="utf-8")
    result.written = [problem_path, reference_path]


def upload_problem(problems_dir: Path, yaml_text: str, reference_text: str, *, replace: bool,
                   check: GraderSettings | None = None, executor: Executor | None = None) -> UploadResult:
    """Validate, optionally `gradax check`, then write both files. Nothing is written when anything fails."""
    yaml_text, reference_text = normalized(yaml_text), normalized(reference_text)
    result = validate_upload(problems_dir, yaml_text, reference_text, replace=replace)
    if not result.ok:
        return result
    if check is not None:
        check_upload(result, yaml_text, reference_text, check, executor)
        if not result.ok:
            return result
    write_upload(problems_dir, result, yaml_text, reference_text, replace=replace)
    return result
