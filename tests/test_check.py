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


def test_whole_bank_passes(gradax: Any) -> None:
    result = gradax("check", timeout=3600)
    print(result.stdout.splitlines()[-1])  # the bank's check time, for the CI log
    assert result.returncode == 0, result.stdout + result.stderr
