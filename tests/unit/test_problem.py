"""The problem format: valid files load; invalid ones are rejected with file, line and field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graders.cases import build_cases
from graders.problem import (
    JUDGING_ONLY_FIELDS,
    LoadedProblem,
    Problem,
    ProblemBank,
    ProblemError,
    load_problem,
    parse_problem,
)
from graders.reference import cache_key

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """\
id: tiny
title: Tiny
track: drafts
difficulty: easy
statement: Double it.
function: double
args:
  - name: seed
    kind: scalar
  - name: x
    kind: array
starter_code: "def double(seed, x):\\n    ...\\n"
tests:
  public:
    - name: example
      args: {seed: 0, x: [1.0, 2.0]}
  hidden:
    - name: rand
      args: {seed: 3, x: {random: normal, shape: [2, 3], seed: 1}}
  generated:
    - count: 3
      seed: 9
      dims: {n: [2, 5]}
      args:
        seed: {int_range: [0, 10]}
        x: {shape: [n, 2], random: uniform, low: -1, high: 1}
"""


def test_minimal_problem_loads_with_defaults() -> None:
    problem = parse_problem(MINIMAL, Path("tiny.yaml"))
    assert problem.signature == "def double(seed, x):"
    assert problem.tolerance.rtol == 1e-5 and problem.tolerance.atol == 1e-6
    assert problem.limits.time_s == 10.0


def test_cases_follow_the_harness_convention() -> None:
    problem = parse_problem(MINIMAL, Path("tiny.yaml"))
    cases = build_cases(problem)
    assert [c.name for c in cases] == ["example", "rand", "generated-1", "generated-2", "generated-3"]
    assert [c.public for c in cases] == [True, False, False, False, False]
    seed, x = cases[0].args
    assert isinstance(seed, float) and seed == 0.0
    assert isinstance(x, np.ndarray) and x.dtype == np.float32 and x.tolist() == [1.0, 2.0]
    assert cases[1].args[1].shape == (2, 3)
    for case in cases[2:]:
        s, arr = case.args
        assert isinstance(s, float) and 0 <= s <= 10
        assert 2 <= arr.shape[0] <= 5 and arr.shape[1] == 2 and np.all(np.abs(arr) <= 1)
    # Reproducible: the same file gives the same inputs, so reference outputs can be cached.
    again = build_cases(problem)
    assert all(np.array_equal(a.args[1], b.args[1]) for a, b in zip(cases, again, strict=True))
    assert len(build_cases(problem, public_only=True)) == 1


@pytest.mark.parametrize(
    ("edit", "line", "field", "text"),
    [
        (lambda s: s.replace("title: Tiny\n", ""), 1, "title", "Field required"),
        (lambda s: s.replace("kind: array", "kind: tensor"), 11, "args.1.kind", "'scalar' or 'array'"),
        (lambda s: s.replace("difficulty: easy", "difficulty: brutal"), 4, "difficulty", "'easy', 'medium' or 'hard'"),
        (
            lambda s: s.replace("args: {seed: 0, x: [1.0, 2.0]}", "args: {seed: 0}"),
            16, "tests.public.0.args", "missing args ['x']",
        ),
        (lambda s: s.replace("function: double", "function: 2double"), 6, "function", "not a Python identifier"),
        (lambda s: s.replace("shape: [n, 2]", "shape: [m, 2]"), 26, "tests.generated.0.args.x.shape", "dimension 'm'"),
        # Longer than the web app's database holds (test_the_database_holds_what_a_problem_may_say).
        (lambda s: s.replace("title: Tiny", "title: " + "T" * 201), 2, "title", "at most 200 characters"),
        (lambda s: s.replace("track: drafts", "track: " + "d" * 65), 3, "track", "at most 64 characters"),
        (lambda s: s.replace("name: rand", "name: " + "r" * 101), 18, "tests.hidden.0.name", "at most 100 characters"),
        (lambda s: s.replace("- count: 3", "- count: 3\n      name: " + "g" * 97), 22, "tests.generated.0.name",
         "at most 96 characters"),
        # Test arrays are built in the server for every grading: a size typo is located, not 20 GB allocated.
        (lambda s: s.replace("shape: [2, 3], seed: 1", "shape: [50000, 50000], seed: 1"), 19,
         "tests.hidden.0.args.x.shape", "the array holds 2,500,000,000 numbers; a test array holds at most 1,048,576"),
        (lambda s: s.replace("dims: {n: [2, 5]}", "dims: {n: [2, 5000000]}"), 21, "tests.generated.0",
         "argument 'x' (at its largest) holds 10,000,000 numbers"),
        (lambda s: s.replace("dims: {n: [2, 5]}", "dims: {n: [2, 500000]}").replace("count: 3", "count: 100"), 14,
         "tests", "the tests' arrays hold up to 100,000,006 numbers together; at most 16,777,216"),
        (lambda s: s.replace("dims: {n: [2, 5]}", "dims: {n: [5, 2]}"), 23, "tests.generated.0.dims",
         "n: [5, 2]: the low end is above the high end"),
        (lambda s: s.replace("int_range: [0, 10]", "int_range: [10, 0]"), 25, "tests.generated.0.args.seed.int_range",
         "[10, 0]: the low end is above the high end"),
        # A broken value is reported against the form it takes, not against every form a value may take.
        (lambda s: s.replace("random: normal, shape", "random: normal, shap"), 19, "tests.hidden.0.args.x.shap",
         "Extra inputs are not permitted"),
    ],
)
def test_invalid_problems_name_line_and_field(edit, line: int, field: str, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProblemError) as err:
        parse_problem(edit(MINIMAL), Path("tiny.yaml"))
    message = "\n".join(err.value.errors)
    assert text in message
    if field:
        assert f"tiny.yaml:{line}: {field}:" in message, message


def test_a_broken_value_gets_one_error_for_its_own_form() -> None:
    """A test value may be a number, a list or a drawn array: a typo in a drawn array said five things, one per
    form ("Input should be a valid number", "... a valid integer", ...); now only what is wrong with it."""
    with pytest.raises(ProblemError) as err:
        parse_problem(MINIMAL.replace("random: normal, shape", "random: gaussian, shape"), Path("tiny.yaml"))
    assert err.value.errors == ["tiny.yaml:19: tests.hidden.0.args.x.random: Input should be 'normal', 'uniform' or "
                                "'randint'"]


def test_a_file_nested_too_deep_is_refused_before_it_is_built() -> None:
    """libyaml's composer recurses in C: 100,000 nested brackets crashed the process (a server, from an upload)."""
    nested = "[" * 100_000 + "]" * 100_000
    deep = MINIMAL.replace("args: {seed: 0, x: [1.0, 2.0]}", "args: {seed: 0, x: " + nested + "}")
    with pytest.raises(ProblemError) as err:
        parse_problem(deep, Path("tiny.yaml"))
    assert err.value.errors == ["tiny.yaml:16: lists and mappings are nested more than 64 levels deep"]


def test_aliases_that_expand_past_the_limit_or_into_themselves_are_refused() -> None:
    """Ten short lines of `&a [*b, *b, ...]` made a test array of 10^8 numbers (minutes and gigabytes to build)."""
    levels = "".join(f"    - name: l{i}\n      args: {{seed: 1, x: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]}\n"
                     for i in range(1, 8))
    ten = ", ".join(["1.0"] * 10)
    first = f"    - name: l0\n      args: {{seed: 1, x: &a0 [{ten}]}}\n"
    bomb = MINIMAL.replace("  hidden:\n", "  hidden:\n" + first + levels)
    with pytest.raises(ProblemError) as err:
        parse_problem(bomb, Path("tiny.yaml"))
    # l5 is the first to hold more than a million values (10^6 numbers and its lists).
    assert err.value.errors == ["tiny.yaml:29: more than 1,000,000 values once its aliases (*name) are expanded"]
    looped = MINIMAL.replace("x: [1.0, 2.0]", "x: &a [1.0, *a]")
    with pytest.raises(ProblemError) as err:
        parse_problem(looped, Path("tiny.yaml"))
    assert err.value.errors == ["tiny.yaml:16: an anchor (&name) contains an alias (*name) of itself"]
    # An alias that repeats a small value is fine.
    shared = MINIMAL.replace("x: [1.0, 2.0]", "x: &pair [1.0, 2.0]").replace(
        "  hidden:\n", "  hidden:\n    - name: again\n      args: {seed: 1, x: *pair}\n")
    assert [c.args[1].tolist() for c in build_cases(parse_problem(shared, Path("tiny.yaml")))[:2]] == [[1.0, 2.0]] * 2


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ProblemError) as err:
        parse_problem(MINIMAL.replace("track: drafts", "track: [drafts"), Path("tiny.yaml"))
    assert "tiny.yaml:" in err.value.errors[0] and "not valid YAML" in err.value.errors[0]


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ProblemError) as err:
        parse_problem(MINIMAL + "colour: blue\n", Path("tiny.yaml"))
    assert "colour: Extra inputs are not permitted" in "\n".join(err.value.errors)


def test_file_name_must_match_id_and_reference_must_exist(tmp_path: Path) -> None:
    (tmp_path / "problems").mkdir()
    wrong_name = tmp_path / "problems" / "other.yaml"
    wrong_name.write_text(MINIMAL)
    with pytest.raises(ProblemError, match="must match the file name"):
        load_problem(wrong_name)
    right = tmp_path / "problems" / "tiny.yaml"
    right.write_text(MINIMAL)
    with pytest.raises(ProblemError, match="no reference solution"):
        load_problem(right)
    (tmp_path / "reference_solutions").mkdir()
    (tmp_path / "reference_solutions" / "tiny.py").write_text("def double(seed, x):\n    return x * 2\n")
    loaded = load_problem(right)
    assert loaded.id == "tiny"
    before = loaded.content_hash
    (tmp_path / "reference_solutions" / "tiny.py").write_text("def double(seed, x):\n    return 2 * x\n")
    assert load_problem(right).content_hash != before


def test_bank_loads_the_project_problems_and_reports_broken_files(tmp_path: Path) -> None:
    bank = ProblemBank(ROOT / "problems")
    assert "nnx-module-basics" in bank.problems
    assert not bank.errors, bank.errors
    (tmp_path / "problems").mkdir()
    (tmp_path / "problems" / "tiny.yaml").write_text("id: [")
    broken = ProblemBank(tmp_path / "problems")
    assert broken.problems == {} and len(broken.errors) == 1


def _loaded(tmp_path: Path, text: str, reference: str = "def double(seed, x):\n    return 2 * x\n") -> LoadedProblem:
    problems = tmp_path / "problems"
    problems.mkdir(parents=True, exist_ok=True)
    (tmp_path / "reference_solutions").mkdir(exist_ok=True)
    (problems / "tiny.yaml").write_text(text)
    (tmp_path / "reference_solutions" / "tiny.py").write_text(reference)
    bank = ProblemBank(problems)
    loaded = bank.get("tiny")
    assert loaded is not None, bank.errors
    return loaded


def test_editing_what_no_trusted_run_reads_keeps_the_prepared_outputs(tmp_path: Path) -> None:
    """The statement, hints, limits and tolerances change the problem's version but not what its preparation
    computed: the reference cache key stays, so no student waits for a new preparation. Tests and the
    reference solution do change it."""
    base = _loaded(tmp_path / "a", MINIMAL)
    presentation = _loaded(tmp_path / "b", MINIMAL.replace("title: Tiny", "title: Tiny, retitled")
                           .replace("statement: Double it.", "statement: Double it, please.\nhints: [multiply]\n"
                                    "limits: {time_s: 30, memory_mb: 1024}\ntolerance: {rtol: 0.01, atol: 0.001}"))
    assert presentation.content_hash != base.content_hash
    assert presentation.outputs_hash == base.outputs_hash and cache_key(presentation) == cache_key(base)
    other_test = _loaded(tmp_path / "c", MINIMAL.replace("x: [1.0, 2.0]", "x: [1.0, 3.0]"))
    other_reference = _loaded(tmp_path / "d", MINIMAL, "def double(seed, x):\n    return x + x\n")
    assert len({base.outputs_hash, other_test.outputs_hash, other_reference.outputs_hash}) == 3
    assert set(JUDGING_ONLY_FIELDS) <= set(Problem.model_fields)  # a renamed field must not slip through


def test_the_cache_key_reads_the_installed_versions_once_per_process(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A grading computes the key several times; scanning site-packages for five versions each time cost ~1.7 ms."""
    import importlib.metadata

    from graders import reference

    looked_up: list[str] = []
    real_version = importlib.metadata.version

    def version(name: str) -> str:
        looked_up.append(name)
        return real_version(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    reference._installed_versions.cache_clear()
    try:
        loaded = _loaded(tmp_path, MINIMAL)
        first = cache_key(loaded)
        assert cache_key(loaded) == first and cache_key(loaded) == first
        assert sorted(looked_up) == sorted(reference.LIBRARIES)
        assert reference.library_versions() == {name: real_version(name) for name in reference.LIBRARIES}
    finally:
        reference._installed_versions.cache_clear()


def test_a_broken_yaml_file_is_located_and_quoted() -> None:
    """The error names the file and line, and quotes the line with a caret under the column (the pure parser's
    message: the fast one, libyaml's, has no excerpt)."""
    with pytest.raises(ProblemError) as err:
        parse_problem(MINIMAL.replace("track: drafts", "track: [drafts"), Path("tiny.yaml"))
    message = err.value.errors[0]
    line = MINIMAL.splitlines().index("track: drafts") + 1
    assert message.startswith("tiny.yaml:"), message
    assert "track: [drafts" in message and "^" in message, message
    assert f'line {line}, column 8' in message, message


def test_the_database_holds_what_a_problem_may_say() -> None:
    """The web app mirrors every problem into its database and stores each test's name with each attempt:
    PostgreSQL refuses a longer string than its column (SQLite stores it), so the schema's caps are the columns'."""
    from app.models import AttemptTest
    from app.models import Problem as ProblemRow
    from graders.problem import MAX_FUNCTION, MAX_TEST_NAME, MAX_TITLE, MAX_TRACK

    columns = ProblemRow.__table__.c
    assert (columns.title.type.length, columns.track.type.length, columns.function.type.length) == (
        MAX_TITLE, MAX_TRACK, MAX_FUNCTION)
    assert AttemptTest.__table__.c.name.type.length == MAX_TEST_NAME
