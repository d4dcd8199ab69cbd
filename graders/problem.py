"""The problem format: one YAML file per problem, validated by pydantic.

Errors name the file, the line and the field, because instructors fix problems from those messages.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from graders.dtypes import DtypePolicy
from graders.yaml_files import FileErrors, Loc, compose_mapping, locate, node_line, validation_errors

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,63}$"
# The longest title, track, function name and test name the web app's database holds (app/models.py: problems
# and attempt_tests columns; PostgreSQL refuses longer ones, SQLite would not). A longer one is a located error
# in `gradax check` and an upload, not a server that cannot mirror its bank.
MAX_TITLE = 200
MAX_TRACK = 64
MAX_FUNCTION = 100
MAX_TEST_NAME = 100
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The most numbers one test array may hold, and a problem's test arrays all together (the bank's largest array holds
# 864). Tests are built in the server for every grading and sent to each child: a typo such as `shape: [50000,
# 50000]` in an upload is a located error, not a server allocating 20 GB.
MAX_ARRAY_ELEMENTS = 1 << 20
MAX_TEST_ELEMENTS = 1 << 24


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArgSpec(Strict):
    """One parameter of the required function.

    `scalar` arguments reach the function as Python floats (the harness convention); `array`
    arguments as `jax.Array` of `dtype`. `shape` is documentation only (e.g. `[batch, in]`).
    """

    name: str
    kind: Literal["scalar", "array"]
    dtype: Literal["float32", "float16", "bfloat16", "int32", "uint32", "bool"] = "float32"
    shape: list[str | int] | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not IDENTIFIER.match(v):
            raise ValueError(f"{v!r} is not a Python identifier")
        return v


class RandomArray(Strict):
    """An array argument produced from a seed, so hidden tests need not spell out their values."""

    random: Literal["normal", "uniform", "randint"]
    shape: list[int]
    seed: int = 0
    low: float = 0.0
    high: float = 1.0
    scale: float = 1.0

    @field_validator("shape")
    @classmethod
    def _dims(cls, v: list[int]) -> list[int]:
        if any(d < 0 for d in v):
            raise ValueError("dimensions must be >= 0")
        _within_array_cap(math.prod(v))
        return v


def _check_ordered(lo: int, hi: int, name: str = "") -> None:
    """A `[lo, hi]` range (a drawn size or number) whose ends are the right way round."""
    if lo > hi:
        raise ValueError(f"{name}[{lo}, {hi}]: the low end is above the high end")


def _within_array_cap(elements: int, what: str = "the array") -> None:
    if elements > MAX_ARRAY_ELEMENTS:
        raise ValueError(f"{what} holds {elements:,} numbers; a test array holds at most {MAX_ARRAY_ELEMENTS:,}")


def _value_kind(v: Any) -> str:
    """Which form a test value takes, so a broken one is reported against that form alone (not against all five).
    Tags are capitalised: error locations leave them out (graders/yaml_files.py: locate)."""
    if isinstance(v, dict | RandomArray):
        return "RandomArray"
    if isinstance(v, list):
        return "List"
    return "Bool" if isinstance(v, bool) else "Int" if isinstance(v, int) else "Float"


# A test value: a number for scalars; a (nested) list or a RandomArray for arrays.
ArgValue = Annotated[Annotated[float, Tag("Float")] | Annotated[int, Tag("Int")] | Annotated[bool, Tag("Bool")]
                     | Annotated[list[Any], Tag("List")] | Annotated[RandomArray, Tag("RandomArray")],
                     Discriminator(_value_kind)]


class TestCase(Strict):
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEST_NAME)]
    args: dict[str, ArgValue]
    description: str = ""
    # Weight in the score (the fraction of test points passed); every test weighs 1 unless it says otherwise.
    points: Annotated[float, Field(gt=0, le=1000)] = 1.0


class IntRange(Strict):
    int_range: Annotated[list[int], Field(min_length=2, max_length=2)]

    @field_validator("int_range")
    @classmethod
    def _range_ordered(cls, v: list[int]) -> list[int]:
        _check_ordered(v[0], v[1])
        return v


class Choice(Strict):
    choice: Annotated[list[float], Field(min_length=1)]


class GeneratedArray(Strict):
    """An array whose dimensions are drawn per test: an int, `[lo, hi]`, or a name from `dims`."""

    shape: list[Annotated[int, Field(ge=0)] | str | Annotated[list[Annotated[int, Field(ge=0)]],
                                                               Field(min_length=2, max_length=2)]]
    random: Literal["normal", "uniform", "randint"] = "normal"
    low: float = 0.0
    high: float = 1.0
    scale: float = 1.0

    @field_validator("shape")
    @classmethod
    def _ranges_ordered(cls, v: list[int | str | list[int]]) -> list[int | str | list[int]]:
        for d in v:
            if isinstance(d, list):
                _check_ordered(d[0], d[1])
        return v

    def most_elements(self, dims: dict[str, list[int]]) -> int:
        """The most numbers a drawn array can hold (a dimension not in `dims` is reported elsewhere: 1 here)."""
        return math.prod(d if isinstance(d, int) else max(d) if isinstance(d, list) else max(dims.get(d, [1]))
                         for d in self.shape)


def _generated_kind(v: Any) -> str:
    """int_range, choice or an array: each key names its form, so a broken one is reported against that form."""
    if isinstance(v, dict):
        return "IntRange" if "int_range" in v else "Choice" if "choice" in v else "GeneratedArray"
    return "IntRange" if isinstance(v, IntRange) else "Choice" if isinstance(v, Choice) else "GeneratedArray"


GeneratedValue = Annotated[Annotated[IntRange, Tag("IntRange")] | Annotated[Choice, Tag("Choice")]
                           | Annotated[GeneratedArray, Tag("GeneratedArray")], Discriminator(_generated_kind)]


class Generated(Strict):
    """`count` hidden tests drawn from `seed`: reproducible, so reference outputs can be cached."""

    # Each test is named "<name>-<n>", n up to 100.
    name: Annotated[str, Field(min_length=1, max_length=MAX_TEST_NAME - 4)] = "generated"
    count: Annotated[int, Field(ge=1, le=100)]
    points: Annotated[float, Field(gt=0, le=1000)] = 1.0  # per generated test
    seed: int = 0
    dims: dict[str, Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)]] = {}
    args: dict[str, GeneratedValue]

    @field_validator("dims")
    @classmethod
    def _dims_ordered(cls, v: dict[str, list[int]]) -> dict[str, list[int]]:
        for name, (lo, hi) in v.items():
            _check_ordered(lo, hi, f"{name}: ")
        return v

    @model_validator(mode="after")
    def _arrays_within_cap(self) -> Generated:
        for name, rule in self.args.items():
            if isinstance(rule, GeneratedArray):
                _within_array_cap(rule.most_elements(self.dims), f"argument {name!r} (at its largest)")
        return self

    def most_elements(self) -> int:
        """The most numbers all its tests' arrays can hold together."""
        return self.count * sum(r.most_elements(self.dims) for r in self.args.values() if isinstance(r, GeneratedArray))


class Tests(Strict):
    public: Annotated[list[TestCase], Field(min_length=1)]
    hidden: list[TestCase] = []
    generated: list[Generated] = []

    @model_validator(mode="after")
    def _within_total_cap(self) -> Tests:
        # Arrays written out as lists are bounded by the file (graders/yaml_files.py: MAX_VALUES); drawn ones here.
        drawn = sum(math.prod(v.shape) for case in self.public + self.hidden for v in case.args.values()
                    if isinstance(v, RandomArray))
        total = drawn + sum(g.most_elements() for g in self.generated)
        if total > MAX_TEST_ELEMENTS:
            raise ValueError(f"the tests' arrays hold up to {total:,} numbers together; at most {MAX_TEST_ELEMENTS:,}")
        return self


class Tolerance(Strict):
    rtol: Annotated[float, Field(ge=0)] = 1e-5
    atol: Annotated[float, Field(ge=0)] = 1e-6
    # "reject": NaN/Inf where the reference is finite fails. "equal": NaN matches NaN.
    nan_policy: Literal["reject", "equal"] = "reject"


class Limits(Strict):
    """Per-problem limits. Clients can never raise these; the sandbox clamps them to its maxima."""

    time_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    memory_mb: Annotated[int, Field(ge=256, le=8192)] = 2048
    output_kb: Annotated[int, Field(ge=1, le=65536)] = 4096


# Stages that can reject a submission whose outputs are right (graders/model_checks.py).
CheckStage = Literal["state", "gradients", "retrace", "batch_invariance", "eval_determinism"]


class KnownMistake(Strict):
    """A short wrong solution and what a student whose outputs match it should read.

    `rejected_by`: `outputs` (the default) means the hidden tests' outputs must tell it apart from the
    reference. A check stage means the opposite proof: its outputs equal the reference's on every test (so
    output-only grading would accept it) and that stage rejects it on a hidden test.
    """

    id: str
    message: str
    code: str
    rejected_by: Literal["outputs"] | CheckStage = "outputs"


class Alternative(Strict):
    """Another correct solution (e.g. statement-exact where the reference uses a library call): `gradax
    check` grades it like the reference, and it must be accepted."""

    id: str
    description: str = ""
    code: str


class StateChecks(Strict):
    """Compare the model the function builds with the reference's: nnx.state paths, Variable types, shapes
    and dtypes (values only when asked).

    `model`: how the harness gets at the model. `captured` (the default): every `nnx.Module` constructed
    while the function runs is recorded, and the outermost ones (not held by another) are the model,
    described after the function returns. `build`: the problem names a second function (`build`) with the
    same arguments that returns the module, described as built.
    `paths`: `any` compares the multiset of (type, shape, dtype), whatever the attributes are called;
    `exact` also compares the paths, for statements that name the attributes (`kernel`).
    """

    model: Literal["captured", "build"] = "captured"
    build: str | None = None
    paths: Literal["any", "exact"] = "any"
    values: bool = False

    @field_validator("build")
    @classmethod
    def _build_identifier(cls, v: str | None) -> str | None:
        if v is not None and not IDENTIFIER.match(v):
            raise ValueError(f"{v!r} is not a Python identifier")
        return v


class GradientCheck(Strict):
    """The gradient of a named loss must match the reference's (catches stop_gradient and detached state).

    `wrt: params`: the model (as `state_checks.model` finds it) is called as `model(*args)` and the loss
    of that is differentiated with respect to its `nnx.Param`s. `wrt: inputs`: the loss of the function's
    own result is differentiated with respect to the array arguments named in `args`.
    """

    wrt: Literal["params", "inputs"]
    args: Annotated[list[str], Field(min_length=1)]
    loss: Literal["sum_squares", "sum"] = "sum_squares"
    rtol: Annotated[float, Field(ge=0)] | None = None
    atol: Annotated[float, Field(ge=0)] | None = None


class RetraceCheck(Strict):
    """One call of the function may trace each jitted function at most `max_traces` times (top-level traces, per
    function: the same code jitted anew, as `nnx.jit` inside a loop does, is one function)."""

    max_traces: Annotated[int, Field(ge=1, le=1000)] = 1


class BatchInvarianceCheck(Strict):
    """Row-wise problems: `f(batch)[i] == f(batch[i:i+1])[0]` along axis 0 of `arg`, for `rows` rows."""

    arg: str
    rows: Annotated[int, Field(ge=1, le=8)] = 2


class EvalDeterminismCheck(Strict):
    """After the function returns: `model.eval()`, then `model(*args)` twice must give the same result."""

    args: Annotated[list[str], Field(min_length=1)]


class TransformChecks(Strict):
    gradients: GradientCheck | None = None
    retrace: RetraceCheck | None = None
    batch_invariance: BatchInvarianceCheck | None = None
    eval_determinism: EvalDeterminismCheck | None = None


class Problem(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    title: Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
    track: Annotated[str, Field(min_length=1, max_length=MAX_TRACK)]
    order: int = 0
    difficulty: Literal["easy", "medium", "hard"]
    statement: str
    function: Annotated[str, Field(max_length=MAX_FUNCTION)]
    args: Annotated[list[ArgSpec], Field(min_length=1)]
    returns: str = ""
    starter_code: str
    tests: Tests
    tolerance: Tolerance = Tolerance()
    # How a returned dtype is judged against the reference's (graders/dtypes.py): exact, same_kind, any.
    dtype: DtypePolicy = "same_kind"
    limits: Limits = Limits()
    hints: list[str] = []
    known_mistakes: list[KnownMistake] = []
    alternatives: list[Alternative] = []
    # None: on when the reference builds an nnx.Module (checked per problem version); false: off.
    state_checks: StateChecks | bool | None = None
    transform_checks: TransformChecks = TransformChecks()
    tags: list[str] = []

    @field_validator("function")
    @classmethod
    def _function_identifier(cls, v: str) -> str:
        if not IDENTIFIER.match(v):
            raise ValueError(f"{v!r} is not a Python identifier")
        return v

    @property
    def signature(self) -> str:
        return f"def {self.function}({', '.join(a.name for a in self.args)}):"

    @property
    def arg_kinds(self) -> dict[str, ArgSpec]:
        return {a.name: a for a in self.args}


def _named(items: object) -> list[tuple[int, Any]]:
    return list(enumerate(items)) if isinstance(items, list) else []


def semantic_errors(data: Problem | dict[str, Any]) -> list[tuple[Loc, str]]:
    """Cross-field rules pydantic cannot express per field, each with the location it concerns.

    Works on the raw YAML mapping as well as on a validated Problem, and skips what is malformed, so a file
    with schema errors gets these reported in the same round (an unknown argument at line 92 is not held back
    until the schema errors above it are fixed)."""
    raw: dict[str, Any] = data.model_dump() if isinstance(data, Problem) else data
    errors: list[tuple[Loc, str]] = []
    names = [a.get("name") for _, a in _named(raw.get("args")) if isinstance(a, dict)]
    for i, name in enumerate(names):
        if name in names[:i]:
            errors.append((("args", i, "name"), f"argument {name!r} repeats"))
    arg_names = {n for n in names if isinstance(n, str)}
    tests: dict[str, Any] = raw["tests"] if isinstance(raw.get("tests"), dict) else {}
    seen: set[str] = set()
    for group in ("public", "hidden"):
        for i, case in _named(tests.get(group)):
            if not isinstance(case, dict):
                continue
            loc: Loc = ("tests", group, i)
            name = case.get("name")
            if isinstance(name, str) and name in seen:
                errors.append(((*loc, "name"), f"test name {name!r} repeats"))
            if isinstance(name, str):
                seen.add(name)
            args = case.get("args")
            if arg_names and isinstance(args, dict) and set(args) != arg_names:
                missing = sorted(arg_names - set(args))
                extra = sorted(str(k) for k in set(args) - arg_names)
                errors.append(((*loc, "args"), f"test {name!r}: missing args {missing}, unknown args {extra}"))
    for i, gen in _named(tests.get("generated")):
        if not isinstance(gen, dict) or not isinstance(gen.get("args"), dict):
            continue
        loc = ("tests", "generated", i, "args")
        if arg_names and set(gen["args"]) != arg_names:
            errors.append((loc, f"generated tests {gen.get('name', 'generated')!r} must give every argument "
                                f"{sorted(arg_names)}"))
        dims: dict[str, Any] = gen["dims"] if isinstance(gen.get("dims"), dict) else {}
        for arg, spec in gen["args"].items():
            if isinstance(spec, dict) and isinstance(spec.get("shape"), list):
                for dim in spec["shape"]:
                    if isinstance(dim, str) and dim not in dims:
                        errors.append(((*loc, arg, "shape"), f"dimension {dim!r} is not in dims {sorted(dims)}"))
    ids = [m.get("id") if isinstance(m, dict) else None for _, m in _named(raw.get("known_mistakes"))]
    for i, mistake_id in enumerate(ids):
        if mistake_id is not None and mistake_id in ids[:i]:
            errors.append((("known_mistakes", i, "id"), f"known mistake id {mistake_id!r} repeats"))
    return errors


def model_check_errors(problem: Problem) -> list[tuple[Loc, str]]:
    """Rules of the model checks on a validated problem: `rejected_by` names a check the problem runs,
    alternative ids are unique, and the arguments checks name exist (arrays where a check slices or
    differentiates them)."""
    errors: list[tuple[Loc, str]] = []
    for i, mistake in enumerate(problem.known_mistakes):
        if mistake.rejected_by != "outputs" and mistake.rejected_by not in enabled_stages(problem):
            errors.append((("known_mistakes", i, "rejected_by"),
                           f"{mistake.rejected_by!r} is not a check this problem runs"))
    for i, alt in enumerate(problem.alternatives):
        if alt.id in [a.id for a in problem.alternatives[:i]]:
            errors.append((("alternatives", i, "id"), f"alternative id {alt.id!r} repeats"))
    specs = problem.arg_kinds
    state = problem.state_checks
    if isinstance(state, StateChecks):
        if (state.model == "build") != (state.build is not None):
            errors.append((("state_checks", "build"), "`build` names the function exactly when `model: build`"))
        if state.values and state.paths != "exact":
            errors.append((("state_checks", "values"), "`values: true` needs `paths: exact` (values pair by path)"))
        if state.build is not None and state.build == problem.function:
            errors.append((("state_checks", "build"), "`build` must differ from the graded function"))
    checks = problem.transform_checks
    named: list[tuple[Loc, str, bool]] = []  # location, argument, must be a float array
    if checks.gradients is not None:
        for j, arg in enumerate(checks.gradients.args):
            named.append((("transform_checks", "gradients", "args", j), arg, checks.gradients.wrt == "inputs"))
    if checks.batch_invariance is not None:
        named.append((("transform_checks", "batch_invariance", "arg"), checks.batch_invariance.arg, True))
    if checks.eval_determinism is not None:
        for j, arg in enumerate(checks.eval_determinism.args):
            named.append((("transform_checks", "eval_determinism", "args", j), arg, False))
    for loc, arg, float_array in named:
        spec = specs.get(arg)
        if spec is None:
            errors.append((loc, f"{arg!r} is not an argument of {problem.function}"))
        elif float_array and (spec.kind != "array" or spec.dtype not in ("float32", "float16", "bfloat16")):
            errors.append((loc, f"{arg!r} must be a float array argument"))
    if problem.state_checks is False and (
            (checks.gradients is not None and checks.gradients.wrt == "params") or checks.eval_determinism is not None):
        errors.append((("state_checks",), "the gradients (wrt params) and eval_determinism checks need the model: "
                                          "leave state_checks on"))
    return errors


def enabled_stages(problem: Problem) -> list[str]:
    """The check stages a problem may run (state only if the reference turns out to build a module)."""
    checks = problem.transform_checks
    configured = {"state": problem.state_checks is not False, "gradients": checks.gradients is not None,
                  "retrace": checks.retrace is not None, "batch_invariance": checks.batch_invariance is not None,
                  "eval_determinism": checks.eval_determinism is not None}
    return [stage for stage, on in configured.items() if on]


class ProblemError(FileErrors):
    """A problem file that cannot be used, with every reason located by file, line and field."""


@dataclass(frozen=True)
class LoadedProblem:
    """A validated problem together with the files it came from and its version hash."""

    problem: Problem
    path: Path
    reference_path: Path
    source: bytes
    reference_source: bytes

    @property
    def id(self) -> str:
        return self.problem.id

    @property
    def content_hash(self) -> str:
        """Changes whenever the problem file or its reference solution changes."""
        h = hashlib.sha256()
        h.update(self.source)
        h.update(b"\0")
        h.update(self.reference_source)
        return h.hexdigest()

    @property
    def outputs_hash(self) -> str:
        """Changes whenever what the trusted runs compute for this problem can change (reference and known-mistake
        outputs, the compile profile): everything but the fields only the page or the judging reads. Editing a
        statement, a hint, a limit or a tolerance needs no new preparation."""
        fields = self.problem.model_dump(mode="json", exclude=set(JUDGING_ONLY_FIELDS))
        h = hashlib.sha256()
        h.update(json.dumps(fields, sort_keys=True).encode())
        h.update(b"\0")
        h.update(self.reference_source)
        return h.hexdigest()


# Problem fields that no trusted run reads (the page shows them; the parent judges with them; the run's own
# limits come from the grading, not from the cached outputs): `outputs_hash` leaves them out.
JUDGING_ONLY_FIELDS = ("title", "track", "order", "difficulty", "statement", "returns", "starter_code", "tolerance",
                       "dtype", "limits", "hints", "tags")


def parse_problem(text: str, path: Path) -> Problem:
    """Parse and validate one problem file; raise ProblemError with located messages."""
    root, data = compose_mapping(text, path, ProblemError, "a problem file must be a mapping of fields")
    # Every error in one round: schema errors and cross-field errors together, in file order.
    located = semantic_errors(data)
    problem: Problem | None = None
    try:
        problem = Problem.model_validate(data)
    except ValidationError as exc:
        located = validation_errors(exc) + located
    else:
        located += model_check_errors(problem)
    if located:
        messages = [(node_line(root, loc), locate(root, path, loc, msg)) for loc, msg in located]
        raise ProblemError(path, [m for _, m in sorted(messages, key=lambda lm: lm[0])])
    assert problem is not None
    return problem


def reference_path_for(problem_path: Path, problem_id: str) -> Path:
    """Reference solutions live in `reference_solutions/` beside `problems/`, named after the id."""
    module = problem_id.replace("-", "_") + ".py"
    return problem_path.resolve().parent.parent / "reference_solutions" / module


def load_problem(path: Path) -> LoadedProblem:
    source = path.read_bytes()
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(path, [f"{path}:1: not UTF-8 text"]) from exc
    problem = parse_problem(text, path)
    if path.stem != problem.id:
        raise ProblemError(path, [f"{path}:1: id: {problem.id!r} must match the file name {path.stem!r}"])
    ref = reference_path_for(path, problem.id)
    if not ref.is_file():
        raise ProblemError(path, [f"{path}:1: no reference solution at {ref}"])
    return LoadedProblem(problem, path, ref, source, ref.read_bytes())


class ProblemBank:
    """All problems of a `problems/` directory, loaded once and reloadable."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.problems: dict[str, LoadedProblem] = {}
        self.errors: dict[Path, ProblemError] = {}
        self.reload()

    def reload(self) -> None:
        problems: dict[str, LoadedProblem] = {}
        errors: dict[Path, ProblemError] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            try:
                loaded = load_problem(path)
            except ProblemError as exc:
                errors[path] = exc
                continue
            problems[loaded.id] = loaded
        self.problems, self.errors = problems, errors

    def get(self, problem_id: str) -> LoadedProblem | None:
        return self.problems.get(problem_id)

    def __iter__(self) -> Iterator[LoadedProblem]:
        return iter(sorted(self.problems.values(), key=lambda p: (p.problem.track, p.problem.order, p.id)))
