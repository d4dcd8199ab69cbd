"""`gradax check` accepts a sound problem and rejects broken ones with a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from graders.scaffold import TEMPLATE

pytestmark = pytest.mark.slow


def write_problem(root: Path, problem_id: str, yaml_text: str, reference: str) -> Path:
    (root / "problems").mkdir(parents=True, exist_ok=True)
    (root / "reference_solutions").mkdir(exist_ok=True)
    path = root / "problems" / f"{problem_id}.yaml"
    path.write_text(yaml_text)
    (root / "reference_solutions" / f"{problem_id.replace('-', '_')}.py").write_text(reference)
    return path


def template(problem_id: str = "double-it", function: str = "double_it") -> str:
    return TEMPLATE.format(id=problem_id, title="Double it", function=function)


REFERENCE = "import jax.numpy as jnp\n\ndef double_it(seed, x):\n    return jnp.asarray(x) * 2\n"


def test_scaffolded_problem_passes_check(tmp_path: Path, gradax: Any) -> None:
    result = gradax("new", "double-it", "--problems", str(tmp_path / "problems"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "reference_solutions" / "double_it.py").exists()
    result = gradax("check", str(tmp_path / "problems"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 of 1 problems ok" in result.stdout
    again = gradax("new", "double-it", "--problems", str(tmp_path / "problems"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_missing_field_and_unknown_kind_are_located(tmp_path: Path, gradax: Any) -> None:
    text = template().replace("difficulty: easy\n", "").replace("kind: array", "kind: matrix")
    path = write_problem(tmp_path, "double-it", text, REFERENCE)
    result = gradax("check", str(path))
    assert result.returncode == 1
    assert f"{path}:1: difficulty: Field required" in result.stdout
    line = text.splitlines().index("    kind: matrix") + 1
    assert f"{path}:{line}: args.1.kind: Input should be 'scalar' or 'array'" in result.stdout


def test_reference_that_fails_its_own_tests_is_rejected(tmp_path: Path, gradax: Any) -> None:
    broken = "import jax.numpy as jnp\n\ndef double_it(seed, x):\n    if x.shape[0] == 0:\n" \
             "        raise ValueError('cannot double nothing')\n    return jnp.asarray(x) * 2\n"
    path = write_problem(tmp_path, "double-it", template(), broken)
    result = gradax("check", str(path))
    assert result.returncode == 1
    assert "the reference raised on test 'empty'" in result.stdout
    assert "cannot double nothing" in result.stdout


def test_a_reference_that_does_not_load_is_shown_as_the_reference(tmp_path: Path, gradax: Any) -> None:
    """The child names every program it runs "submission.py" and speaks to a student ("your code"); an instructor
    reads the reference's own file name."""
    path = write_problem(tmp_path, "double-it", template(), "import no_such_module_here\n" + REFERENCE)
    result = gradax("check", str(path))
    assert result.returncode == 1
    reference = tmp_path / "reference_solutions" / "double_it.py"
    assert f"{reference}:1: the reference does not load: error: No module named 'no_such_module_here'" \
        in result.stdout
    assert 'File "double_it.py", line 1' in result.stdout and "the reference only" in result.stdout
    assert "submission.py" not in result.stdout and "your code" not in result.stdout


def test_a_known_mistake_that_never_ends_is_named_with_its_test(tmp_path: Path, data_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference and the known mistakes run in one trusted process under one time limit; when it is reached
    the check said "did not finish (exit -9, timed out: False)". It says which program on which test."""
    from graders import reference
    from graders.check import check_paths
    from graders.settings import GraderSettings

    hangs = ("      def double_it(seed, x):\n          while x.shape[0] == 0:\n              pass\n"
             "          return x + 2\n")
    text = template().replace("      def double_it(seed, x):\n          return x + 2\n", hangs)
    assert hangs in text
    path = write_problem(tmp_path, "double-it", text, REFERENCE)
    # The run's limit: the problem's 1 s times its 4 programs (the reference and three known mistakes), not 120 s.
    monkeypatch.setattr(reference, "TRUSTED_RUN_MIN_S", 0.0)
    text = text.replace("difficulty: easy\n", "difficulty: easy\nlimits: {time_s: 1}\n")
    path.write_text(text)
    [result] = check_paths([path], GraderSettings(data_dir=data_dir / "hang", pool="cold"))
    assert len(result.errors) == 1, result.errors
    assert "the reference runner did not finish: stopped after 4 s, running known mistake 'plus-two' on test " \
           "'empty'" in result.errors[0], result.errors[0]


def test_known_mistake_the_tests_cannot_tell_apart_is_rejected(tmp_path: Path, gradax: Any) -> None:
    text = template().replace("          return x + 2\n", "          return x * 2.0\n")
    path = write_problem(tmp_path, "double-it", text, REFERENCE)
    result = gradax("check", str(path))
    assert result.returncode == 1
    assert "known mistake 'plus-two' passes every test" in result.stdout


def test_known_mistake_killed_only_by_public_tests_is_rejected(tmp_path: Path, gradax: Any) -> None:
    # Wrong only on the public example's first element: the hidden tests never see x[0] == 1.
    text = template().replace(
        "          return x + 2\n",
        "          import jax.numpy as jnp\n          return jnp.where(x == 1.0, 0.0, x * 2)\n",
    )
    path = write_problem(tmp_path, "double-it", text, REFERENCE)
    result = gradax("check", str(path))
    assert result.returncode == 1
    assert "known mistake 'plus-two' is rejected only by public tests" in result.stdout


def test_model_checks_are_validated(tmp_path: Path, gradax: Any) -> None:
    """A dimension that never varies, an alternative that is wrong, and `rejected_by` mistakes that prove
    nothing: each is a located error of `gradax check`."""
    text = template().replace("      dims: {n: [1, 16]}", "      dims: {n: [3, 3]}")
    text = text.replace("    - name: empty\n      args: {seed: 1, x: []}\n",
                        "    - name: three\n      args: {seed: 1, x: [1.0, 0.0, 2.0]}\n")
    text += """  - id: differs
    rejected_by: batch_invariance
    message: "Adds two."
    code: |
      def double_it(seed, x):
          return x + 2
  - id: same-as-reference
    rejected_by: batch_invariance
    message: "Nothing wrong."
    code: |
      def double_it(seed, x):
          return x * 2.0
alternatives:
  - id: triple
    code: |
      def double_it(seed, x):
          return x * 3
transform_checks:
  batch_invariance: {arg: x}
"""
    path = write_problem(tmp_path, "double-it", text, REFERENCE)
    result = gradax("check", str(path))
    assert result.returncode == 1, result.stdout
    out = result.stdout
    assert "dimension `n` has one value in every test: an answer that hard-codes it passes" in out
    assert "alternative 'triple' is not accepted (wrong_answer" in out
    assert "known mistake 'differs' differs from the reference in its outputs" in out
    assert "known mistake 'same-as-reference' is not rejected by the batch_invariance check on any hidden test" in out
    assert "no known mistake shows what the batch_invariance check rejects while outputs pass" in out


# Each kind of model check and the known mistake in the bank that proves it: output-only grading accepts
# the mistake, and the check rejects it (`gradax check` says so for every problem).
PROOFS = {
    "state": ("nnx-module-basics", "plain-array-kernel"),
    "gradients": ("nnx-layernorm", "stop-gradient-statistics"),
    "retrace": ("nnx-jit-train-step", "jit-inside-loop"),
    "batch_invariance": ("nnx-layernorm", "squeezed-batch"),
    "eval_determinism": ("nnx-sequential", "dropout-ignores-eval"),
}


@pytest.mark.every_core
def test_whole_bank_passes(gradax: Any) -> None:
    result = gradax("check", timeout=3600)
    print(result.stdout.splitlines()[-1])  # the bank's check time, for the CI log
    assert result.returncode == 0, result.stdout + result.stderr
    lines_of: dict[str, list[str]] = {}
    current = ""
    for line in result.stdout.splitlines():
        if not line.startswith(" "):
            current = line
        lines_of.setdefault(current, []).append(line)
    for stage, (problem, mistake) in PROOFS.items():
        block = next(v for k, v in lines_of.items() if f"problems/{problem}.yaml" in k)
        assert f"       the {stage} check rejects known mistake {mistake!r}, whose outputs pass" in block, block


def test_a_warm_check_prepares_the_problem_in_one_trusted_run(tmp_path: Path, data_dir: Path, warm_pool: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked through a warm pool, a problem's outputs and compile profile come from one trusted run (the pool
    does not record the profile in a run of its own), and the problem is then prepared for its students."""
    import uuid

    from graders import compile_profile
    from graders.check import check_paths
    from graders.prepare import is_prepared
    from graders.problem import load_problem
    from graders.settings import GraderSettings

    # A reference of its own (a unique comment): nothing of it can be in the shared data dir's caches yet.
    path = write_problem(tmp_path, "double-it", template(), REFERENCE + f"# {uuid.uuid4().hex}\n")

    def no_second_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the profile was recorded in a trusted run of its own")

    monkeypatch.setattr(compile_profile, "record_profile", no_second_run)
    settings = GraderSettings(data_dir=data_dir, problems_dir=path.parent)
    (result,) = check_paths([path], settings, executor=warm_pool)
    assert result.ok, result.errors
    assert is_prepared(load_problem(path), settings)


def test_an_upload_checked_through_the_warm_pool_is_prepared_once_written(tmp_path: Path, data_dir: Path,
                                                                          warm_pool: Any) -> None:
    """The server checks an instructor's upload through its warm pool: the reference is graded in a warm child,
    and the trusted run that checks it also prepares the problem, so once written it is ready for its first
    student without a preparation of its own."""
    import uuid

    from app.services.uploads import upload_problem
    from graders.prepare import is_prepared
    from graders.problem import load_problem
    from graders.settings import GraderSettings

    reference = REFERENCE + f"# {uuid.uuid4().hex}\n"  # nothing of it can be in the shared data dir's caches yet
    problems = tmp_path / "problems"
    problems.mkdir()
    settings = GraderSettings(data_dir=data_dir, problems_dir=problems)
    warm_before, cold_before = warm_pool.stats["warm"], warm_pool.stats["cold"]
    result = upload_problem(problems, template(), reference, replace=False, check=settings, executor=warm_pool)
    assert result.ok and result.checked, result.errors
    assert warm_pool.stats["warm"] > warm_before and warm_pool.stats["cold"] == cold_before
    (written,) = [p for p in result.written if p.suffix == ".yaml"]
    assert is_prepared(load_problem(written), settings)


def test_a_check_of_several_problems_forks_no_child_ahead(data_dir: Path) -> None:
    """`gradax check` grades each reference once: its pool keeps no child ready for a next submission (those were
    thrown away: 129 -> 106 s for the whole bank without them), and one problem alone is graded cold."""
    from graders.check import check_executor
    from graders.executor import ColdExecutor
    from graders.pool import WarmPool
    from graders.settings import GraderSettings

    settings = GraderSettings(data_dir=data_dir)
    pool = check_executor(settings, files=2)
    try:
        assert isinstance(pool, WarmPool) and pool.settings.pool_prefork == 0
        assert settings.pool_prefork > 0  # the server's own setting is untouched
    finally:
        pool.close()
    assert isinstance(check_executor(settings, files=1), ColdExecutor)
