"""The model's stages in the parent: each compares a child's (validated) report with the reference's and
fails with a message that teaches; hidden tests never show the reference's shapes; forged reports are
refused by the schema before anything compares them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graders.child.model_probe import TRACED_ONLY
from graders.compare import Comparison, Output, compare
from graders.diagnose import STAGE_PITFALLS, stage_pitfall_for
from graders.model_checks import (
    ProbeReport,
    StageContext,
    _layer_kinds,
    batch_invariance_stage,
    compare_dropout_layers,
    compare_state,
    eval_determinism_stage,
    gradients_stage,
    layer_order_advice,
    retrace_stage,
    staged,
)
from graders.probe_schema import ModelState, ProbeError, Probes, parse_probes
from graders.problem import StateChecks, Tolerance, load_problem

ROOT = Path(__file__).resolve().parents[2]
TOL = Tolerance()
ANY = StateChecks()
EXACT = StateChecks(paths="exact")


def state(*entries: tuple[str, str, str, list[int]], roots: tuple[str, ...] = ("Model",)) -> ModelState:
    return ModelState(roots=list(roots), variables=[
        {"path": p, "type": t, "base": b, "shape": s, "dtype": "float32"} for p, t, b, s in entries])


def kernel(path: str = "kernel", type_: str = "Param", base: str = "Param",
           shape: list[int] | None = None) -> tuple[str, str, str, list[int]]:
    return path, type_, base, shape if shape is not None else [3, 4]


def test_plain_array_kernel_is_told_to_wrap_it_in_param() -> None:
    want = state(kernel())
    got = state(kernel(type_="Array", base="array"))
    message = compare_state(got, want, EXACT, "same_kind", TOL, public=True)
    assert message == ("`kernel` is a plain jax.Array: wrap it in `nnx.Param` so `nnx.state(model, nnx.Param)` "
                       "and optimizers see it")
    # The same holds whatever the student called it, when paths are free.
    got = state(kernel(path="w", type_="Array", base="array"))
    assert compare_state(got, want, ANY, "same_kind", TOL, public=False).startswith("`w` is a plain jax.Array")


def test_counter_as_param_and_custom_subclasses_are_named() -> None:
    want = state(kernel("count", "Count", "Variable", []))
    message = compare_state(state(kernel("count", "Param", "Param", [])), want, ANY, "same_kind", TOL, public=True)
    assert message is not None and "`count` is an nnx.Param, expected `Count(nnx.Variable)`" in message
    # A plain nnx.Variable is not a type of its own; a subclass of another name is (the lesson is the kind).
    message = compare_state(state(kernel("count", "Variable", "Variable", [])), want, ANY, "same_kind", TOL, True)
    assert message is not None and "`count` is an nnx.Variable, expected `Count(nnx.Variable)`" in message
    assert compare_state(state(kernel("count", "Counter", "Variable", [])), want, ANY, "same_kind", TOL, True) is None
    # flax's own nnx.LoRAParam where the reference defines LoraParam: both are Param subclasses.
    lora = state(kernel("lora_a", "LoRAParam", "Param"))
    assert compare_state(lora, state(kernel("a", "LoraParam", "Param")), ANY, "same_kind", TOL, True) is None
    # A custom Param subclass where a plain Param is expected is still a Param.
    lora_ok = compare_state(state(kernel(type_="LoraParam")), state(kernel()), ANY, "same_kind", TOL, True)
    assert lora_ok is None
    message = compare_state(state(kernel("a", "Param", "Param")), state(kernel("a", "LoraParam", "Param")),
                            ANY, "same_kind", TOL, True)
    assert message is not None and "expected `LoraParam(nnx.Param)`" in message
    assert "nnx.state(model, LoraParam)" in message


def test_shapes_show_on_public_tests_only() -> None:
    want = state(kernel(shape=[3, 4]))
    got = state(kernel(shape=[4, 3]))
    assert compare_state(got, want, EXACT, "same_kind", TOL, public=True) == \
        "`kernel` has shape (4, 3), expected shape (3, 4)"
    hidden = compare_state(got, want, EXACT, "same_kind", TOL, public=False)
    assert hidden == "`kernel` has the wrong shape (hidden test)"
    # Paths free: a missing Param of some shape, counted without shapes on a hidden test.
    got = state(kernel(shape=[5, 4]), kernel("bias", shape=[4]))
    want = state(kernel(shape=[3, 4]), kernel("bias", shape=[4]))
    hidden = compare_state(got, want, ANY, "same_kind", TOL, public=False)
    assert hidden is not None and "(3, 4)" not in hidden and "3" not in hidden.replace("(hidden test)", "")


def test_no_module_renamed_attribute_extra_state_and_dtype() -> None:
    want = state(kernel())
    none_built = compare_state(ModelState(roots=[], variables=[]), want, ANY, "same_kind", TOL, True)
    assert none_built is not None and none_built.startswith("no nnx.Module was built while your function ran")
    linen = compare_state(ModelState(roots=[], variables=[], linen=["Proj"]), want, ANY, "same_kind", TOL, True)
    assert linen is not None and "`Proj` is a Flax Linen module" in linen and "subclass `nnx.Module`" in linen
    renamed = compare_state(state(kernel("w")), want, EXACT, "same_kind", TOL, True)
    assert renamed == "`w` should be named `kernel` (the statement names it)"
    assert compare_state(state(kernel("w")), want, ANY, "same_kind", TOL, True) is None
    extra = compare_state(state(kernel(), kernel("scale", "Array", "array", [])), want, ANY, "same_kind", TOL, True)
    assert extra is not None and "`scale` of a scalar that the reference's model does not have" in extra
    half = ModelState(roots=["M"], variables=[{"path": "kernel", "type": "Param", "base": "Param", "shape": [3, 4],
                                               "dtype": "bfloat16"}])
    dtype = compare_state(half, want, ANY, "same_kind", TOL, True)
    assert dtype is not None and dtype.startswith("`kernel` has dtype bfloat16, expected float32")
    assert compare_state(half, want, ANY, "any", TOL, True) is None


def test_a_missing_dropout_layer_is_named() -> None:
    """A Dropout holds no variables, so a model built without the statement's Dropout had the same state and,
    in evaluation mode, the same outputs: it was accepted."""
    with_dropout = ModelState(roots=["Sequential"], variables=state(kernel()).variables, dropout_layers=1)
    without = state(kernel(), roots=("Sequential",))
    assert compare_state(without, with_dropout, ANY, "same_kind", TOL, True) is None  # the variables are the same
    public = compare_dropout_layers(without, with_dropout, True)
    assert public is not None
    assert public.startswith("the model has 0 nnx.Dropout layers where the reference's model has 1")
    hidden = compare_dropout_layers(without, with_dropout, False)
    assert hidden == "the model lacks an nnx.Dropout layer that the reference's model has (hidden test)"
    assert compare_dropout_layers(with_dropout, with_dropout, True) is None
    more = ModelState(roots=["Sequential"], variables=state(kernel()).variables, dropout_layers=2)
    assert compare_dropout_layers(more, with_dropout, True) is None  # an extra Dropout: the outputs show it


def test_state_values_when_asked() -> None:
    settings = StateChecks(paths="exact", values=True)
    want = ModelState(roots=["M"], variables=[{"path": "count", "type": "Count", "base": "Variable", "shape": [],
                                               "dtype": "uint32", "value": 0}])
    got = ModelState(roots=["M"], variables=[{"path": "count", "type": "Count", "base": "Variable", "shape": [],
                                              "dtype": "uint32", "value": 0}])
    wrong = (np.array(2, np.uint32),)
    right = (np.array(3, np.uint32),)
    assert compare_state(got, want, settings, "same_kind", TOL, True, right, right) is None
    assert compare_state(got, want, settings, "same_kind", TOL, True, wrong, right) == \
        "`count` holds 2 after the run, expected 3"


# ---------------------------------------------------------------- the schema refuses forged reports

def test_probes_schema_refuses_what_the_harness_never_sends() -> None:
    ok = {"state": {"roots": ["M"], "variables": [{"path": "kernel", "type": "Param", "base": "Param",
                                                   "shape": [3, 4], "dtype": "float32"}]}}
    assert isinstance(parse_probes(ok, 1, 0), Probes)
    forged: list[Any] = [
        {"state": {"roots": ["M"], "variables": [], "verdict": "accepted"}},  # unknown field
        {"state": {"roots": ["M"], "variables": [{"path": "k", "type": "Param", "base": "Param",
                                                  "shape": [3], "dtype": "float32", "value": 5}]}},  # no array 5
        {"state": {"roots": ["<script>"], "variables": []}},  # not an identifier
        {"state": {"roots": [], "variables": [{"path": "a b\n", "type": "Param", "base": "Param"}]}},
        {"state": {"roots": [], "variables": [{"path": "k", "type": "Param", "base": "Root"}]}},
        {"state": {"roots": [], "variables": [{"path": "k", "type": "Param", "base": "Param"}] * 513}},
        {"retrace": {"traces": "1"}},  # strings are not numbers
        {"retrace": {"traces": True}},
        {"eval_determinism": {"first": {"t": "leaf", "i": 9}, "second": {"t": "leaf", "i": 0}}},
        {"batch_invariance": {"batch": 2, "rows": [{"row": 0, "tree": _deep(40)}]}},
        {"gradients": {"entries": [{"path": "k", "shape": [1], "value": -1}]}},
        "not an object",
    ]
    for raw in forged:
        with pytest.raises(ProbeError):
            parse_probes(raw, 1, 0)


def _deep(depth: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"t": "leaf", "i": 0}
    for _ in range(depth):
        tree = {"t": "tuple", "c": [tree]}
    return tree


# ---------------------------------------------------------------- transform stages

LAYERNORM = load_problem(ROOT / "problems" / "nnx-layernorm.yaml").problem
JIT_STEP = load_problem(ROOT / "problems" / "nnx-jit-train-step.yaml").problem
SEQUENTIAL = load_problem(ROOT / "problems" / "nnx-sequential.yaml").problem
LEAF0 = {"t": "leaf", "i": 0}


def ctx(problem: Any, got: Output, want: Output, got_probes: dict[str, Any], arrays: tuple[np.ndarray, ...],
        want_probes: dict[str, Any], want_arrays: tuple[np.ndarray, ...], public: bool = True) -> StageContext:
    return StageContext(problem, got, want, ProbeReport(Probes.model_validate(got_probes), arrays),
                        ProbeReport(Probes.model_validate(want_probes), want_arrays), public)


def test_gradients_stage_names_a_zero_gradient_and_a_bent_one() -> None:
    x = np.ones((2, 3), np.float32)
    out = Output(LEAF0, (x,))
    want = {"gradients": {"entries": [{"path": "x", "shape": [2, 3], "value": 1}]}}
    want_arrays = (x, np.full((2, 3), 0.5, np.float32))
    zero = ctx(LAYERNORM, out, out, want, (x, np.zeros((2, 3), np.float32)), want, want_arrays)
    failure = gradients_stage(zero)
    assert failure is not None and failure.stage == "gradients" and "is zero" in failure.message
    assert "stop_gradient" in failure.message
    bent = ctx(LAYERNORM, out, out, want, (x, np.full((2, 3), 0.4, np.float32)), want, want_arrays)
    failure = gradients_stage(bent)
    assert failure is not None and "differs from the reference's (max abs error 0.1)" in failure.message
    assert "blocks or bends" in failure.message
    # Off by 0.2 % of its size: a constant differs (an epsilon), nothing blocks the gradient.
    slight = ctx(LAYERNORM, out, out, want, (x, np.full((2, 3), 0.501, np.float32)), want, want_arrays)
    failure = gradients_stage(slight)
    assert failure is not None and "differs slightly from the reference's (max abs error 0.001)" in failure.message
    assert "an epsilon" in failure.message and "blocks" not in failure.message
    assert gradients_stage(ctx(LAYERNORM, out, out, want, want_arrays, want, want_arrays)) is None
    broken = ctx(LAYERNORM, out, out, {"gradients": {"error": "TracerArrayConversionError: ..."}}, (x,), want,
                 want_arrays)
    failure = gradients_stage(broken)
    assert failure is not None and "could not be computed" in failure.message


def test_retrace_stage_counts_against_the_budget() -> None:
    out = Output(LEAF0, (np.zeros(3, np.float32),))
    within = ctx(JIT_STEP, out, out, {"retrace": {"traces": 1}}, out.leaves, {"retrace": {"traces": 1}}, out.leaves)
    assert retrace_stage(within) is None
    over = ctx(JIT_STEP, out, out, {"retrace": {"traces": 5}}, out.leaves, {"retrace": {"traces": 1}}, out.leaves)
    failure = retrace_stage(over)
    assert failure is not None
    assert "traced the same jitted code 5 times (this problem allows 1 per jitted function)" in failure.message


def test_batch_invariance_stage_finds_mixed_rows_and_squeezed_batches() -> None:
    full = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    want = Output(LEAF0, (full,))
    want_probes = {"batch_invariance": {"batch": 2, "rows": [{"row": 0, "tree": {"t": "leaf", "i": 1}}]}}
    want_arrays = (full, full[0:1])
    mixed = (full, np.array([[9.0, 2.0]], np.float32))
    failure = batch_invariance_stage(ctx(LAYERNORM, Output(LEAF0, (full,)), want, want_probes, mixed, want_probes,
                                         want_arrays))
    assert failure is not None and "row 0 of the output changes with the other rows" in failure.message
    assert "axis 0" in failure.message
    squeezed = (full, np.array([1.0, 2.0], np.float32))
    failure = batch_invariance_stage(ctx(LAYERNORM, Output(LEAF0, (full,)), want, want_probes, squeezed, want_probes,
                                         want_arrays))
    assert failure is not None and "has shape (2,), not (1, ...)" in failure.message
    ok = batch_invariance_stage(ctx(LAYERNORM, Output(LEAF0, (full,)), want, want_probes, want_arrays, want_probes,
                                    want_arrays))
    assert ok is None
    # Wrong on the batch, and alone the row only rounds a little differently (a one-pass variance's cancellation):
    # the values stage reports it, not "mixes rows". Wrong on the batch and far off alone: the rows mix.
    wrong = full + 2.0
    noisy = (wrong, wrong[0:1] + 0.1)
    assert batch_invariance_stage(ctx(LAYERNORM, Output(LEAF0, (wrong,)), want, want_probes, noisy, want_probes,
                                      want_arrays)) is None
    mixing = (wrong, wrong[0:1] + 1.0)
    failure = batch_invariance_stage(ctx(LAYERNORM, Output(LEAF0, (wrong,)), want, want_probes, mixing, want_probes,
                                         want_arrays))
    assert failure is not None and "row 0 of the output changes with the other rows" in failure.message


def test_eval_determinism_stage_compares_two_calls() -> None:
    out = Output(LEAF0, (np.zeros(2, np.float32),))
    probes = {"eval_determinism": {"first": {"t": "leaf", "i": 1}, "second": {"t": "leaf", "i": 2}}}
    same = (out.leaves[0], np.ones(2, np.float32), np.ones(2, np.float32))
    differ = (out.leaves[0], np.ones(2, np.float32), np.zeros(2, np.float32))
    assert eval_determinism_stage(ctx(SEQUENTIAL, out, out, probes, same, probes, same)) is None
    failure = eval_determinism_stage(ctx(SEQUENTIAL, out, out, probes, differ, probes, same))
    assert failure is not None and "calling `model(x)` twice gave different results" in failure.message


def test_stage_order_state_before_values_gradients_after() -> None:
    out = Output(LEAF0, (np.zeros(2, np.float32),))
    values_failed = Comparison(False, "values", "values differ")
    shape_failed = Comparison(False, "shape", "wrong shape")
    c = ctx(JIT_STEP, out, out, {"retrace": {"traces": 9}}, out.leaves, {"retrace": {"traces": 1}}, out.leaves)
    assert staged(shape_failed, c).stage == "shape"
    assert staged(values_failed, c).stage == "values"  # the retrace budget only matters once values are right
    assert staged(Comparison(True, "values", "passed"), c).stage == "retrace"


# ---------------------------------------------------------------- the diagnosis table of these stages

def test_every_stage_pitfall_matches_a_real_stage_message() -> None:
    """Each entry of graders/diagnose.py's STAGE_PITFALLS is found from a message the stages really write
    (not a copy of it), and a message no entry covers gets none."""
    want = state(kernel())
    half = ModelState(roots=["M"], variables=[{"path": "kernel", "type": "Param", "base": "Param", "shape": [3, 4],
                                               "dtype": "bfloat16"}])
    counter = state(kernel("count", "Count", "Variable", []))
    leaf = np.ones(2, np.float32)
    out = Output(LEAF0, (leaf,))
    x = np.ones((2, 3), np.float32)
    grads = {"gradients": {"entries": [{"path": "x", "shape": [2, 3], "value": 1}]}}
    full = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    rows = {"batch_invariance": {"batch": 2, "rows": [{"row": 0, "tree": {"t": "leaf", "i": 1}}]}}
    evals = {"eval_determinism": {"first": {"t": "leaf", "i": 1}, "second": {"t": "leaf", "i": 2}}}

    def failed(comparison: Comparison | None) -> tuple[str, str]:
        assert comparison is not None and not comparison.ok
        return comparison.stage or "", comparison.message

    real: dict[str, tuple[str, str | None]] = {
        "plain-array-attribute": ("state", compare_state(state(kernel(type_="Array", base="array")), want, ANY,
                                                         "same_kind", TOL, public=False)),
        "state-held-as-param": ("state", compare_state(state(kernel("count", "Param", "Param", [])), counter, ANY,
                                                       "same_kind", TOL, public=True)),
        "no-module": ("state", compare_state(ModelState(roots=[], variables=[]), want, ANY, "same_kind", TOL, True)),
        "linen-module": ("state", compare_state(ModelState(roots=[], variables=[], linen=["Proj"]), want, ANY,
                                                "same_kind", TOL, True)),
        "parameter-missing": ("state", compare_state(state(kernel(shape=[2, 2])), state(kernel(shape=[2, 2]),
                                                     kernel("pos", shape=[1, 5])), ANY, "same_kind", TOL, True)),
        "layers-differ": ("state", compare_state(
            built(("LayerNorm", [[8], [8]]), variables=(kernel("scale", shape=[8]), kernel("bias", shape=[8]))),
            built(("LayerNorm", [[8], [8]]), ("LayerNorm", [[8], [8]]), variables=(
                kernel("scale", shape=[8]), kernel("bias", shape=[8]), kernel("scale", shape=[8]),
                kernel("bias", shape=[8]))), ANY, "same_kind", TOL, True)),
        "statistics-missing": ("state", compare_state(state(kernel(shape=[2, 2])), state(
            kernel(shape=[2, 2]), kernel("bn.mean", "BatchStat", "BatchStat", [2])), ANY, "same_kind", TOL, True)),
        "parameter-shapes-differ": ("state", compare_state(
            state(*(kernel(f"{n}.kernel", shape=[4, 4]) for n in "qkv"), kernel("proj.kernel", shape=[4, 4])),
            state(kernel("qkv.kernel", shape=[4, 12]), kernel("proj.kernel", shape=[4, 4])), ANY, "same_kind", TOL,
            True)),
        "blocked-gradient": failed(gradients_stage(ctx(LAYERNORM, Output(LEAF0, (x,)), Output(LEAF0, (x,)), grads,
                                                       (x, np.zeros((2, 3), np.float32)), grads,
                                                       (x, np.ones((2, 3), np.float32)), public=False))),
        "constant-differs": failed(gradients_stage(ctx(LAYERNORM, Output(LEAF0, (x,)), Output(LEAF0, (x,)), grads,
                                                       (x, np.full((2, 3), 1.001, np.float32)), grads,
                                                       (x, np.ones((2, 3), np.float32))))),
        "retrace-every-step": failed(retrace_stage(ctx(JIT_STEP, out, out, {"retrace": {"traces": 3}}, out.leaves,
                                                       {"retrace": {"traces": 1}}, out.leaves))),
        "rows-mixed": failed(batch_invariance_stage(ctx(
            LAYERNORM, Output(LEAF0, (full,)), Output(LEAF0, (full,)), rows, (full, np.array([[9.0, 2.0]], np.float32)),
            rows, (full, full[0:1]), public=False))),
        "batch-size-assumed": failed(batch_invariance_stage(ctx(
            LAYERNORM, Output(LEAF0, (full,)), Output(LEAF0, (full,)), rows, (full, np.array([1.0, 2.0], np.float32)),
            rows, (full, full[0:1])))),
        "eval-ignored": failed(eval_determinism_stage(ctx(SEQUENTIAL, out, out, evals, (leaf, leaf, leaf * 0), evals,
                                                          (leaf, leaf, leaf)))),
    }
    traced_only = {"error": TRACED_ONLY}
    real["model-only-traced"] = failed(eval_determinism_stage(ctx(SEQUENTIAL, out, out,
                                                                  {"eval_determinism": traced_only}, (leaf,), evals,
                                                                  (leaf, leaf, leaf))))
    traced_gradients = failed(gradients_stage(ctx(LAYERNORM, Output(LEAF0, (x,)), Output(LEAF0, (x,)),
                                                  {"gradients": traced_only}, (x,), grads,
                                                  (x, np.ones((2, 3), np.float32)))))
    found = stage_pitfall_for(*traced_gradients)
    assert found is not None and found.id == "model-only-traced", traced_gradients
    assert "Training differentiates it" not in traced_gradients[1]  # that advice is for a blocked gradient
    real["reduced-precision"] = failed(compare(Output({"t": "leaf", "i": 0, "d": "bfloat16"}, (leaf,)), out, TOL,
                                               public=True))
    real["integer-result"] = failed(compare(Output(LEAF0, (np.ones(2, np.int32),)), out, TOL, public=False))
    listed = {"t": "list", "c": [{"t": "leaf", "i": 0}, {"t": "leaf", "i": 1}]}
    real["list-for-array"] = failed(compare(Output(listed, (leaf, leaf)), out, TOL, public=True))
    state_dtype = ("state", compare_state(half, want, ANY, "same_kind", TOL, True))
    hidden_missing = ("state", compare_state(state(kernel(shape=[2, 2])), state(kernel(shape=[2, 2]),
                                             kernel("pos", shape=[1, 5])), ANY, "same_kind", TOL, False))
    for pitfall_id, (stage, message) in [*real.items(), ("reduced-precision", state_dtype),
                                         ("parameter-missing", hidden_missing)]:
        found = stage_pitfall_for(stage, message)
        assert found is not None and found.id == pitfall_id, (pitfall_id, stage, message)
    assert {p.id for p in STAGE_PITFALLS} == set(real)
    # The right words in another stage, or a stage's message no entry covers, get no advice.
    assert stage_pitfall_for("values", real["rows-mixed"][1]) is None
    assert stage_pitfall_for("state", "`w` should be named `kernel` (the statement names it)") is None
    assert stage_pitfall_for(None, None) is None


def test_the_problem_page_names_every_stage() -> None:
    """app/static/problem.js labels each test's deciding stage; every stage a comparison can end in (the
    literal ones in graders/ and the model stages) has a label there, so the page shows the new stages like
    the others (tests/browser/test_student_flow.py reads "Stage: Model state" in the browser)."""
    import re

    from graders.model_checks import EARLY_STAGES, LATE_STAGES

    script = (ROOT / "app" / "static" / "problem.js").read_text()
    block = re.search(r"const STAGES = \{(.*?)\};", script, re.S)
    assert block is not None
    labelled = set(re.findall(r"(\w+): \"[^\"]+\"", block.group(1)))
    written = {stage for path in (ROOT / "graders").glob("*.py")
               for stage in re.findall(r'Comparison\((?:False|True), "(\w+)"', path.read_text())}
    stages = {"structure", "shape", "dtype", "finite", "values", *EARLY_STAGES, *LATE_STAGES}
    assert written <= stages
    assert labelled == stages


def built(*layers: tuple[str, list[list[int]]], variables: tuple[tuple[str, str, str, list[int]], ...] = ()
          ) -> ModelState:
    return ModelState(roots=["Model"], layers=[{"type": t, "kind": t, "path": f"l{i}", "shapes": s}
                                               for i, (t, s) in enumerate(layers)],
                      variables=state(*variables).variables)


LIN1, LIN2, NORM = ("Linear", [[3, 8], [8]]), ("Linear", [[8, 1], [1]]), ("BatchNorm", [[8], [8]])


def test_layers_built_in_another_order_are_named_with_the_first_that_differs() -> None:
    advice = layer_order_advice(built(LIN2, NORM, LIN1), built(LIN1, NORM, LIN2))
    assert advice is not None
    assert ("the first layer with parameters that yours builds is `l0`, a `Linear` with parameters of shapes (8, 1), "
            "(1,), "
            "where the reference's builds a `Linear` with parameters of shapes (3, 8), (8,)") in advice
    assert "Each layer draws keys from `rngs` when it is built (a LayerNorm or BatchNorm too)" in advice
    # A norm layer draws keys too (for its scale): built before the Linear, it moves the Linear's keys.
    norm_first = layer_order_advice(built(NORM, LIN1, LIN2), built(LIN1, NORM, LIN2))
    assert norm_first is not None
    assert "the first layer with parameters that yours builds is `l0`, a `BatchNorm`" in norm_first


@pytest.mark.parametrize(("got", "want"), [
    (built(LIN1, NORM, LIN2), built(LIN1, NORM, LIN2)),  # the same order
    (built(LIN2, LIN1), built(LIN1, LIN2, ("Linear", [[1, 1], [1]]))),  # other layers: the state check speaks
    (built(LIN2, LIN1), ModelState(roots=["Model"])),  # the reference's order is not known
])
def test_no_order_advice_for_the_same_order_or_other_layers(got: ModelState, want: ModelState) -> None:
    assert layer_order_advice(got, want) is None


def test_two_models_side_by_side_pair_their_parameters_by_shape_before_by_path() -> None:
    """Two layers built as separate modules repeat their paths (`kernel`, `bias` of each): built in another order,
    each parameter is still paired with the reference's of its shape, and the state matches (the values stage and
    the order advice say what is wrong)."""
    want = state(kernel(shape=[3, 8]), kernel("bias", shape=[8]), kernel(shape=[8, 1]), kernel("bias", shape=[1]),
                 roots=("Linear", "Linear"))
    got = state(kernel(shape=[8, 1]), kernel("bias", shape=[1]), kernel(shape=[3, 8]), kernel("bias", shape=[8]),
                roots=("Linear", "Linear"))
    assert compare_state(got, want, ANY, "same_kind", TOL, public=True) is None


def test_a_public_state_message_lists_both_sides_parameters() -> None:
    three = state(*(kernel(f"{n}.kernel", shape=[4, 4]) for n in "qkv"), kernel("proj.kernel", shape=[4, 4]))
    fused = state(kernel("qkv.kernel", shape=[4, 12]), kernel("proj.kernel", shape=[4, 4]))
    assert compare_state(three, fused, ANY, "same_kind", TOL, True) == (
        "the model's nnx.Params have other shapes than the reference's: none has shape (4, 12); the reference's "
        "model has 2 nnx.Params, yours has 4 (yours: `q.kernel` (4, 4), `k.kernel` (4, 4), `v.kernel` (4, 4), "
        "`proj.kernel` (4, 4); the reference's: (4, 12), (4, 4))")
    assert compare_state(state(kernel(shape=[4, 4])), fused, ANY, "same_kind", TOL, True) == (
        "the model has no nnx.Param of shape (4, 12): the reference's model has 2 nnx.Params, yours has 1 "
        "(yours: `kernel` (4, 4); the reference's: (4, 12), (4, 4))")
    hidden = compare_state(three, fused, ANY, "same_kind", TOL, False)
    assert hidden == "the model lacks an nnx.Param that the reference's model has (hidden test)"


def test_a_missing_parameter_is_said_by_the_kinds_of_layers_when_they_differ() -> None:
    """A transformer block with one LayerNorm where the statement has two: the message counts the layers by kind
    instead of listing sixteen parameters."""
    scale, bias = kernel("scale", shape=[8]), kernel("bias", shape=[8])
    want = built(("LayerNorm", [[8], [8]]), LIN1, ("LayerNorm", [[8], [8]]), variables=(scale, bias, scale, bias))
    got = built(("LayerNorm", [[8], [8]]), LIN1, variables=(scale, bias))
    assert compare_state(got, want, ANY, "same_kind", TOL, True) == (
        "the model has no nnx.Param of shape (8,): the reference's model has 4 nnx.Params, yours has 2 (layers: "
        "`LayerNorm` 2 in the reference's model, 1 in yours)")
    rms = built(("RMSNorm", [[8]]), LIN1, ("RMSNorm", [[8]]), variables=(scale, scale))
    assert compare_state(rms, want, ANY, "same_kind", TOL, True).endswith(
        "(layers: `LayerNorm` 2 in the reference's model, 0 in yours; `RMSNorm` 0 in the reference's model, 2 in "
        "yours)")


def test_classes_of_the_programs_own_are_compared_by_what_they_hold_not_by_name() -> None:
    """A counter module called `Lin` where the reference's is `CountingLinear`: no layer-kind clause (names of a
    program's own classes say nothing); built in another order, the reference's is "a module of its own"."""
    def own(name: str, shapes: list[list[int]], i: int) -> dict[str, object]:
        return {"type": name, "kind": "Module", "path": f"m{i}", "shapes": shapes}

    want = ModelState(roots=["Model"], layers=[own("CountingLinear", [[3, 4]], 0), {**own("Linear", [[4, 2]], 1),
                                                                                   "kind": "Linear"}])
    got = ModelState(roots=["Model"], layers=[{**own("Linear", [[4, 2]], 0), "kind": "Linear"},
                                              own("Lin", [[3, 4]], 1)])
    advice = layer_order_advice(got, want)
    assert advice is not None and "is `m0`, a `Linear` with parameters of shape (4, 2), where the reference's builds " \
        "a module of its own with parameters of shape (3, 4)" in advice
    assert _layer_kinds(got, want) is None
