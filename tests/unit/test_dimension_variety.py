"""The dimension-variety rule of `gradax check`: every dimension a statement lets vary takes two values across
the hidden tests, or check fails at the argument that declares it. No sandbox: only the tests' inputs count."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from graders.cases import build_cases
from graders.check import located_dimension_errors
from graders.problem import ProblemBank, load_problem

ROOT = Path(__file__).resolve().parents[2]
BANK = ProblemBank(ROOT / "problems")

# The five problems whose hidden tests were too narrow (issue 15): the dimensions each now varies.
BROADENED = {
    "nnx-conv-lenet": ("x", 3, {"channels", "height", "width"}),
    "nnx-vit-patch-embed": ("images", 3, {"channels", "height", "width"}),
    "nnx-multihead-attention": ("x", 2, {"batch", "seq", "features"}),
    "nnx-transformer-block": ("x", 2, {"batch", "seq", "features"}),
    "nnx-scan-layers": ("x", 1, {"batch", "d"}),
}
SCALARS = {"nnx-vit-patch-embed": ["patch", "hidden"], "nnx-multihead-attention": ["num_heads"],
           "nnx-transformer-block": ["num_heads", "mlp_dim"], "nnx-scan-layers": ["num_layers"]}


def copy_problem(tmp_path: Path, problem_id: str, text: str) -> Path:
    (tmp_path / "problems").mkdir(parents=True)
    (tmp_path / "reference_solutions").mkdir()
    reference = f"{problem_id.replace('-', '_')}.py"
    shutil.copy(ROOT / "reference_solutions" / reference, tmp_path / "reference_solutions" / reference)
    path = tmp_path / "problems" / f"{problem_id}.yaml"
    path.write_text(text)
    return path


def test_every_problem_varies_every_dimension_it_names() -> None:
    assert not BANK.errors
    for loaded in BANK:
        assert located_dimension_errors(loaded, build_cases(loaded.problem)) == [], loaded.id


@pytest.mark.parametrize("problem_id", sorted(BROADENED))
def test_broadened_problems_vary_the_dimensions_an_answer_could_hard_code(problem_id: str) -> None:
    loaded = BANK.get(problem_id)
    assert loaded is not None
    arg, _, names = BROADENED[problem_id]
    spec = loaded.problem.arg_kinds[arg]
    assert spec.shape is not None
    position = [a.name for a in loaded.problem.args].index(arg)
    hidden = [c for c in build_cases(loaded.problem) if not c.public]
    for name in names:
        axis = spec.shape.index(name)
        assert len({c.args[position].shape[axis] for c in hidden}) >= 2, (problem_id, name)
    for scalar in SCALARS.get(problem_id, []):
        index = [a.name for a in loaded.problem.args].index(scalar)
        assert len({float(c.args[index]) for c in hidden}) >= 2, (problem_id, scalar)
    if problem_id == "nnx-vit-patch-embed":  # non-square images, not only a different size
        assert any(c.args[position].shape[1] != c.args[position].shape[2] for c in hidden)


def test_a_hard_codable_dimension_fails_check_at_its_argument(tmp_path: Path) -> None:
    """LeNet's hidden tests narrowed back to one input channel: a LeNet that hard-codes 1 channel would pass,
    so check names `channels` at the line of `x`'s shape, and nothing else."""
    text = (ROOT / "problems" / "nnx-conv-lenet.yaml").read_text()
    narrowed = text.replace("shape: [3, 12, 8, 3]", "shape: [3, 12, 8, 1]").replace(
        "shape: [1, 8, 16, 2]", "shape: [1, 8, 16, 1]")
    assert narrowed.count(", 1], seed") == text.count(", 1], seed") + 2
    path = copy_problem(tmp_path, "nnx-conv-lenet", narrowed)
    loaded = load_problem(path)
    line = narrowed.splitlines().index("    shape: [batch, height, width, channels]") + 1
    assert located_dimension_errors(loaded, build_cases(loaded.problem)) == [
        f"{path}:{line}: dimension `channels` has one value in every test: an answer that hard-codes it passes "
        "(the hidden tests must give it two values at least)"]
    # A public test alone does not count: only hidden tests keep a hard-coded answer out.
    public_only = narrowed.replace("shape: [2, 8, 8, 1], seed: 0}", "shape: [2, 8, 8, 3], seed: 0}")
    loaded = load_problem(copy_problem(tmp_path / "again", "nnx-conv-lenet", public_only))
    assert [e.split(": ", 1)[1] for e in located_dimension_errors(loaded, build_cases(loaded.problem))] == [
        "dimension `channels` has one value in every test: an answer that hard-codes it passes "
        "(the hidden tests must give it two values at least)"]
