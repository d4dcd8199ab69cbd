"""Public examples: the snippet the page and `gradax pull` show builds exactly the arrays the grader passes,
and the expected output reads as reports print it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.services.examples import LITERAL_ELEMENTS, output_text, public_inputs, snippet
from graders.cases import build_cases
from graders.compare import Output
from graders.problem import ProblemBank, RandomArray

ROOT = Path(__file__).resolve().parents[2]
BANK = ProblemBank(ROOT / "problems")


@pytest.mark.parametrize("problem_id", ["nnx-module-basics", "nnx-conv-lenet", "nnx-jit-train-step",
                                        "nnx-batchnorm-modes"])
def test_the_snippet_builds_the_graders_arguments_exactly(problem_id: str) -> None:
    import jax.numpy as jnp

    loaded = BANK.get(problem_id)
    assert loaded is not None
    for test, case in zip(loaded.problem.tests.public, build_cases(loaded.problem, public_only=True), strict=True):
        code = snippet(loaded, dict(test.args), case).replace(f"out = {loaded.problem.function}(", "_unused = (")
        namespace: dict[str, object] = {}
        exec(compile(code, "snippet.py", "exec"), namespace)
        for spec, want in zip(loaded.problem.args, case.args, strict=True):
            got = namespace[spec.name]
            if spec.kind == "scalar":
                assert isinstance(got, float) and got == want
            else:
                assert got.dtype == jnp.dtype(spec.dtype)  # type: ignore[attr-defined]
                np.testing.assert_array_equal(np.asarray(got), jnp.asarray(want, dtype=spec.dtype))


def test_large_random_inputs_are_rebuilt_from_their_seed_small_ones_written_out() -> None:
    loaded = BANK.get("nnx-conv-lenet")
    assert loaded is not None
    test = loaded.problem.tests.public[0]
    assert isinstance(test.args["x"], RandomArray)
    [example, *_] = public_inputs(loaded)
    assert f"np.random.default_rng({test.args['x'].seed})" in example["snippet"]
    x = next(a for a in example["args"] if a["name"] == "x")
    assert np.prod(x["shape"]) > LITERAL_ELEMENTS and len(np.asarray(x["values"]).ravel()) == np.prod(x["shape"])
    basics = BANK.get("nnx-module-basics")
    assert basics is not None
    assert "x = jnp.array([1., 2., 3.], dtype=jnp.float32)" in public_inputs(basics)[0]["snippet"]


def test_expected_output_text_shows_structure_like_reports() -> None:
    out = Output({"t": "tuple", "c": [{"t": "leaf", "i": 0}, {"t": "leaf", "i": 1}]},
                 (np.array([1.5, -2.0], dtype=np.float32), np.array(3, dtype=np.uint32)))
    assert output_text(out) == "(\n  [ 1.5 -2. ],\n  3\n)"
