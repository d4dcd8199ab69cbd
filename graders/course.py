"""Course files: `courses/<course>/course.yaml` and `courses/<course>/assignments/<id>.yaml`, validated by pydantic.

Like problem files, every error names the file, the line and the field. Times in these files are read in the
course's `timezone` unless they carry an offset (`2026-03-06 23:59+01:00`, `...Z`), and are kept as naive UTC
from here on. docs/courses.md describes the format with a worked example (`courses/example/`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from graders.grade_rule import LatePolicy, PenaltyKind, Window
from graders.problem import ID_PATTERN
from graders.yaml_files import FileErrors, Loc, compose_mapping, locate, validation_errors

COURSE_FILE = "course.yaml"
ASSIGNMENTS_DIR = "assignments"
USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
M = TypeVar("M", bound=BaseModel)


def _parse_time(value: object) -> object:
    """A date and time: a YAML timestamp, or text such as `2026-03-06 23:59` (optionally with an offset)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        raise ValueError(f"{value} has no time of day; write e.g. '{value} 23:59'")
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date and time such as '2026-03-06 23:59' "
                             "or '2026-03-06T23:59:00+01:00'") from None
    raise ValueError("expected a date and time such as '2026-03-06 23:59'")


# Course dates live in this range: far enough for any course, and never near datetime's limits, where moving a
# time between zones overflows.
EARLIEST, LATEST = datetime(1971, 1, 1), datetime(2199, 12, 31)


def in_range(value: datetime) -> datetime:
    if not EARLIEST.year <= value.year <= LATEST.year:
        raise ValueError(f"{value.isoformat()} is outside the years {EARLIEST.year}-{LATEST.year}")
    return value


Time = Annotated[datetime, BeforeValidator(_parse_time), AfterValidator(in_range)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CourseSpec(Strict):
    """course.yaml: the course's title, its time zone, and staff given by username."""

    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    # How times without an offset in this course's files are read (an IANA name such as Europe/Zurich).
    timezone: str = "UTC"
    instructors: list[str] = []
    tas: list[str] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{v!r} is not a time zone name such as 'UTC' or 'Europe/Zurich'") from None
        return v

    @field_validator("instructors", "tas")
    @classmethod
    def _usernames(cls, v: list[str]) -> list[str]:
        for name in v:
            if not USERNAME.match(name):
                raise ValueError(f"{name!r} is not a username")
        return v


class ProblemRef(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    points: Annotated[float, Field(gt=0, le=10_000)] = 1.0


class PenaltySpec(Strict):
    """Exactly one of: `per_day` (fraction off per started day late) or `factor` (fraction a late Submit keeps)."""

    per_day: Annotated[float, Field(gt=0, le=1)] | None = None
    factor: Annotated[float, Field(ge=0, le=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> PenaltySpec:
        if (self.per_day is None) == (self.factor is None):
            raise ValueError("give exactly one of per_day (e.g. 0.2) or factor (e.g. 0.5)")
        return self

    def policy(self) -> LatePolicy:
        if self.per_day is not None:
            return LatePolicy(PenaltyKind.PER_DAY, self.per_day)
        return LatePolicy(PenaltyKind.FACTOR, float(self.factor or 0.0))


class ExtensionSpec(Strict):
    """A student's extension: a new `due` or a number of extra `days`, optionally their own `late_until`."""

    student: str
    due: Time | None = None
    days: Annotated[float, Field(gt=0, le=365)] | None = None
    late_until: Time | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _one(self) -> ExtensionSpec:
        if (self.due is None) == (self.days is None):
            raise ValueError("give exactly one of due (a date and time) or days (extra days, e.g. 2)")
        return self


class AssignmentSpec(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: str = ""
    opens: Time | None = None
    due: Time
    late_until: Time | None = None
    late_penalty: PenaltySpec | None = None
    problems: Annotated[list[ProblemRef], Field(min_length=1)]
    extensions: list[ExtensionSpec] = []


class CourseFileError(FileErrors):
    """A course or assignment file that cannot be used, with every reason located by file, line and field."""


def to_utc(when: datetime, zone: ZoneInfo) -> datetime:
    """Naive UTC. A naive time is read in `zone` (the course's time zone)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=zone)
    return aware.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@dataclass(frozen=True)
class LoadedExtension:
    student: str
    due: datetime  # naive UTC
    late_until: datetime | None
    reason: str


@dataclass(frozen=True)
class LoadedAssignment:
    course_id: str
    id: str
    spec: AssignmentSpec
    path: Path
    source: bytes
    window: Window  # naive UTC
    policy: LatePolicy
    extensions: tuple[LoadedExtension, ...]

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def problems(self) -> list[ProblemRef]:
        return self.spec.problems

    @property
    def max_points(self) -> float:
        return sum(p.points for p in self.spec.problems)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.source).hexdigest()


@dataclass(frozen=True)
class LoadedCourse:
    id: str
    spec: CourseSpec
    path: Path  # the course.yaml
    source: bytes
    assignments: dict[str, LoadedAssignment] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.source).hexdigest()


def _validate(model: type[M], text: str, path: Path) -> tuple[M, yaml.Node | None]:
    root, data = compose_mapping(text, path, CourseFileError, "the file must be a mapping of fields")
    try:
        return model.model_validate(data), root
    except ValidationError as exc:
        located = validation_errors(exc)
        raise CourseFileError(path, [locate(root, path, loc, _clean(msg)) for loc, msg in located]) from exc


def _clean(msg: str) -> str:
    # pydantic prefixes errors raised in validators with "Value error, "; the file's reader does not need it.
    return msg.removeprefix("Value error, ")


def _read(path: Path) -> tuple[bytes, str]:
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise CourseFileError(path, [f"{path}:1: cannot read: {exc.strerror}"]) from exc
    try:
        return source, source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CourseFileError(path, [f"{path}:1: not UTF-8 text"]) from exc


def parse_course(text: str, path: Path) -> CourseSpec:
    spec, _root = _validate(CourseSpec, text, path)
    return spec


def load_course(directory: Path) -> LoadedCourse:
    """course.yaml of one course directory (its assignments are loaded separately, see `load_assignment`)."""
    path = directory / COURSE_FILE
    course_id = directory.name
    if not re.match(ID_PATTERN, course_id):
        raise CourseFileError(path, [f"{path}:1: the course directory name {course_id!r} must be lowercase "
                                     "letters, digits and '-' (it is the course's id)"])
    source, text = _read(path)
    return LoadedCourse(course_id, parse_course(text, path), path, source)


def parse_assignment(text: str, path: Path, *, course_id: str, zone: ZoneInfo,
                     problem_ids: set[str] | None = None) -> LoadedAssignment:
    """Validate one assignment file; times are read in `zone`. `problem_ids`: the problems that exist
    (None: not checked)."""
    spec, root = _validate(AssignmentSpec, text, path)
    assignment_id = spec.id or path.stem
    errors: list[tuple[Loc, str]] = []
    if spec.id is not None and spec.id != path.stem:
        errors.append((("id",), f"{spec.id!r} must match the file name {path.stem!r} (or leave id out)"))
    elif not re.match(ID_PATTERN, assignment_id):
        errors.append(((), f"the file name {path.stem!r} must be lowercase letters, digits and '-' (it is the id)"))
    opens = to_utc(spec.opens, zone) if spec.opens is not None else None
    due = to_utc(spec.due, zone)
    late_until = to_utc(spec.late_until, zone) if spec.late_until is not None else None
    if opens is not None and opens >= due:
        errors.append((("opens",), "opens must be before due"))
    if late_until is not None and late_until < due:
        errors.append((("late_until",), "late_until must not be before due"))
    if spec.late_penalty is not None and late_until is None:
        errors.append((("late_penalty",), "a late penalty needs late_until (until when late Submits count); "
                                          "without it nothing after due counts"))
    seen: set[str] = set()
    for i, ref in enumerate(spec.problems):
        if ref.id in seen:
            errors.append((("problems", i, "id"), f"problem {ref.id!r} is listed twice"))
        seen.add(ref.id)
        if problem_ids is not None and ref.id not in problem_ids:
            errors.append((("problems", i, "id"), f"there is no problem {ref.id!r} in the problem bank"))
    extensions: list[LoadedExtension] = []
    students: set[str] = set()
    for i, ext in enumerate(spec.extensions):
        loc: Loc = ("extensions", i)
        if ext.student in students:
            errors.append(((*loc, "student"), f"student {ext.student!r} has two extensions"))
        students.add(ext.student)
        new_due = to_utc(ext.due, zone) if ext.due is not None else due + timedelta(days=float(ext.days or 0))
        ext_late = to_utc(ext.late_until, zone) if ext.late_until is not None else None
        if new_due <= due:
            errors.append(((*loc, "due"), "an extension's due must be after the assignment's due"))
        if ext_late is not None and ext_late < new_due:
            errors.append(((*loc, "late_until"), "late_until must not be before the extension's due"))
        extensions.append(LoadedExtension(ext.student, new_due, ext_late, ext.reason))
    if errors:
        raise CourseFileError(path, [locate(root, path, loc, msg) for loc, msg in errors])
    policy = spec.late_penalty.policy() if spec.late_penalty is not None else LatePolicy()
    return LoadedAssignment(course_id, assignment_id, spec, path, text.encode("utf-8"),
                            Window(due=due, opens=opens, late_until=late_until), policy, tuple(extensions))


def load_assignment(path: Path, course: LoadedCourse, problem_ids: set[str] | None = None) -> LoadedAssignment:
    _source, text = _read(path)
    return parse_assignment(text, path, course_id=course.id, zone=course.zone, problem_ids=problem_ids)


class CourseBank:
    """Every course under a `courses/` directory with its assignments, loaded once and reloadable.

    A broken assignment file is skipped (its errors are kept); a broken course.yaml skips the whole course.
    A problem may be in one assignment per course: the problem page names the assignment it belongs to.
    """

    def __init__(self, directory: Path, problem_ids: set[str] | None = None):
        self.directory = directory
        self.problem_ids = problem_ids
        self.courses: dict[str, LoadedCourse] = {}
        self.errors: dict[Path, CourseFileError] = {}
        self.reload()

    def reload(self, problem_ids: set[str] | None = None) -> None:
        if problem_ids is not None:
            self.problem_ids = problem_ids
        courses: dict[str, LoadedCourse] = {}
        errors: dict[Path, CourseFileError] = {}
        for course_dir in course_dirs(self.directory):
            try:
                course = load_course(course_dir)
            except CourseFileError as exc:
                errors[exc.path] = exc
                continue
            owner: dict[str, str] = {}
            for path in sorted((course_dir / ASSIGNMENTS_DIR).glob("*.yaml")):
                try:
                    loaded = load_assignment(path, course, self.problem_ids)
                    _claim_problems(loaded, owner)
                except CourseFileError as exc:
                    errors[path] = exc
                    continue
                course.assignments[loaded.id] = loaded
            courses[course.id] = course
        self.courses, self.errors = courses, errors

    def get(self, course_id: str) -> LoadedCourse | None:
        return self.courses.get(course_id)

    def __iter__(self) -> Iterator[LoadedCourse]:
        return iter(sorted(self.courses.values(), key=lambda c: c.id))


def _claim_problems(assignment: LoadedAssignment, owner: dict[str, str]) -> None:
    clashes = [f"{assignment.path}:1: problems: {ref.id!r} is already in assignment {owner[ref.id]!r} of this course"
               for ref in assignment.problems if ref.id in owner]
    if clashes:
        raise CourseFileError(assignment.path, clashes)
    for ref in assignment.problems:
        owner[ref.id] = assignment.id


def course_dirs(directory: Path) -> list[Path]:
    """Course directories: the subdirectories that hold a course.yaml or an assignments/ folder."""
    if not directory.is_dir():
        return []
    return sorted(d for d in directory.iterdir()
                  if d.is_dir() and ((d / COURSE_FILE).exists() or (d / ASSIGNMENTS_DIR).is_dir()))


def is_course_path(path: Path) -> bool:
    """Whether `gradax check` should read `path` as course files rather than problems."""
    if path.is_dir():
        return (path / COURSE_FILE).exists() or (path / ASSIGNMENTS_DIR).is_dir() or bool(course_dirs(path))
    return path.name == COURSE_FILE or path.parent.name == ASSIGNMENTS_DIR


@dataclass
class CourseCheck:
    path: Path
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_course_paths(paths: list[Path], problem_ids: set[str] | None) -> list[CourseCheck]:
    """`gradax check` for course files: one result per course.yaml and per assignment file."""
    results: list[CourseCheck] = []
    dirs: list[Path] = []
    for path in paths:
        if path.is_dir() and not ((path / COURSE_FILE).exists() or (path / ASSIGNMENTS_DIR).is_dir()):
            dirs += course_dirs(path)
        elif path.is_dir():
            dirs.append(path)
        elif path.name == COURSE_FILE:
            dirs.append(path.parent)
        else:  # one assignment file
            results += _check_course(path.parent.parent, problem_ids, only=path)
    for course_dir in dirs:
        results += _check_course(course_dir, problem_ids)
    return results


def _check_course(course_dir: Path, problem_ids: set[str] | None, only: Path | None = None) -> list[CourseCheck]:
    course_result = CourseCheck(course_dir / COURSE_FILE)
    try:
        course = load_course(course_dir)
    except CourseFileError as exc:
        course_result.errors += exc.errors
        return [course_result]
    results = [] if only is not None else [course_result]
    owner: dict[str, str] = {}
    for path in sorted((course_dir / ASSIGNMENTS_DIR).glob("*.yaml")):
        result = CourseCheck(path)
        try:
            _claim_problems(load_assignment(path, course, problem_ids), owner)
        except CourseFileError as exc:
            result.errors += exc.errors
        if only is None or path.resolve() == only.resolve():
            results.append(result)
    if only is not None and not results:
        results.append(CourseCheck(only, [f"{only}:1: not an assignment file of course {course.id!r}"]))
    return results
