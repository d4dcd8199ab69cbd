"""The model's stages, in the trusted parent: what a submission builds and how it behaves under transforms.

Output values are necessary, not sufficient: a module whose kernel is a plain array computes the right
numbers, but no optimizer would ever train it. The child describes the model and runs the checks a
problem turns on (graders/child/model_probe.py); here each description is compared with the reference's for
the same test (computed by the trusted reference runner and cached like its outputs), one function per
stage, one message each.

Order within a test: structure, shape, dtype (graders/compare.py); then `state` and `batch_invariance`,
which name the cause before the values it spoils; then finite and values; then `gradients`, `retrace`
and `eval_determinism`, which only matter once the values are right; last, the count of Dropout layers (a
`state` failure: a layer without variables that nothing before can see). Hidden tests name the stage and the
submission's own attributes, never the reference's shapes or values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from graders import dtypes
from graders.child.model_probe import TRACED_ONLY
from graders.compare import Comparison, Output, leaf_pairs, values_close
from graders.dtypes import DtypePolicy
from graders.probe_schema import GradientEntry, Layer, ModelState, Probes, StateEntry
from graders.problem import Problem, StateChecks, Tolerance

EARLY_STAGES = ("state", "batch_invariance")
LATE_STAGES = ("gradients", "retrace", "eval_determinism")


# A hidden test's failed check, said without its details: those name what the submission built (its attributes,
# classes and errors), which it could have named after a hidden input. The public tests' messages say more.
HIDDEN_STAGE_MESSAGES = {
    "state": "the model's state (the names, kinds, shapes or values of its parameters and variables) differs from "
             "the reference's model (hidden test)",
    "gradients": "the gradients of the loss through your model differ from the reference's (hidden test)",
    "retrace": "one call of your function traced the same jitted code more often than this problem allows "
               "(hidden test)",
    "batch_invariance": "called on one row of the batch, your function gives that row other values or another "
                        "shape than on the whole batch, or fails (hidden test)",
    "eval_determinism": "after `model.eval()`, calling your model twice did not give the same results, or failed "
                        "(hidden test)",
}


def hidden_stage_message(stage: str) -> str:
    return HIDDEN_STAGE_MESSAGES.get(stage, f"the {stage} check failed (hidden test)")


@dataclass(frozen=True)
class ProbeReport:
    """One program's validated probes on one test, with the message's arrays they point at."""

    probes: Probes
    arrays: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class StageContext:
    """What every stage of one test needs: the problem, both sides' outputs and probes, and visibility."""

    problem: Problem
    got: Output
    want: Output
    got_probes: ProbeReport | None
    want_probes: ProbeReport | None
    public: bool
    state_checked: bool = True  # false: the problem's state checks are off (or auto, and the reference built none)


def state_settings(problem: Problem) -> StateChecks:
    return problem.state_checks if isinstance(problem.state_checks, StateChecks) else StateChecks()


def probe_request(problem: Problem, *, state: bool) -> dict[str, Any] | None:
    """The `probes` part of a harness request: what to describe and which checks to run, by argument index."""
    index = {a.name: i for i, a in enumerate(problem.args)}
    checks = problem.transform_checks
    settings = state_settings(problem)
    request: dict[str, Any] = {"arg_names": [a.name for a in problem.args]}
    needs_model = state or checks.eval_determinism is not None or (
        checks.gradients is not None and checks.gradients.wrt == "params")
    if needs_model:
        request["model"] = {"from": settings.model, "build": settings.build}
    if state:
        request["state"] = {"values": settings.values}
    if checks.gradients is not None:
        request["gradients"] = {"wrt": checks.gradients.wrt, "loss": checks.gradients.loss,
                                "args": [index[a] for a in checks.gradients.args]}
    if checks.retrace is not None:
        request["retrace"] = True
    if checks.batch_invariance is not None:
        request["batch_invariance"] = {"arg": index[checks.batch_invariance.arg], "rows": checks.batch_invariance.rows}
    if checks.eval_determinism is not None:
        request["eval_determinism"] = {"args": [index[a] for a in checks.eval_determinism.args]}
    return request if len(request) > 1 else None


# ---------------------------------------------------------------- state

def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" or word.startswith("nnx.") else "a"


def _holder(entry: StateEntry) -> str:
    """How a student's leaf is held, in words: `an nnx.Param`, `a plain jax.Array`, `a Count`."""
    if entry.base == "array":
        return "a plain numpy array" if entry.type == "ndarray" else "a plain jax.Array"
    if entry.type == entry.base:
        return f"an nnx.{entry.type}"
    if entry.base == "other":
        return f"{_article(entry.type)} {entry.type}"
    return f"{_article(entry.type)} `{entry.type}` (an nnx.{entry.base})"


def _wanted(entry: StateEntry) -> str:
    """The reference's holder, as the type to use: `nnx.Param`, or a named subclass `Count(nnx.Variable)`."""
    if entry.type == entry.base or entry.base in ("array", "other"):
        return f"nnx.{entry.type}" if entry.base not in ("array", "other") else entry.type
    return f"{entry.type}(nnx.{entry.base})"


def _why(want: StateEntry) -> str:
    if want.base == "Param" and want.type == "Param":
        return "so `nnx.state(model, nnx.Param)` and optimizers see it"
    if want.base == "BatchStat":
        return "so it is a running statistic: updated in training mode, never trained"
    if want.type != want.base:
        return (f"a subclass of nnx.{want.base} of its own, so filters can select it apart from every other "
                f"nnx.{want.base} (`nnx.state(model, {want.type})`)")
    if want.base == "Variable":
        return "so NNX tracks it as state that optimizers (`wrt=nnx.Param`) leave alone"
    return f"so `nnx.state(model, nnx.{want.base})` sees it"


def _type_ok(got: StateEntry, want: StateEntry) -> bool:
    """The same built-in base; where the reference uses a subclass of it (`Count(nnx.Variable)`,
    `LoraParam(nnx.Param)`), a subclass too, whatever its name (flax's own `nnx.LoRAParam` is one): what
    matters is that filters can tell it from the base type."""
    if got.base != want.base:
        return False
    if want.base in ("array", "other") or want.type == want.base:
        return True
    return got.type != got.base


def _shape_text(shape: list[int] | None) -> str:
    return "a scalar" if shape == [] else (f"shape {tuple(shape)}" if shape is not None else "no shape")


def _type_message(got: StateEntry, want: StateEntry) -> str:
    if got.base == "array":
        return f"`{got.path}` is {_holder(got)}: wrap it in `{_wanted(want)}` {_why(want)}"
    reason = _why(want)
    if got.base == "Param" and want.base != "Param":
        reason = "optimizers (`wrt=nnx.Param`) train every nnx.Param, and this state must not be trained"
    return f"`{got.path}` is {_holder(got)}, expected `{_wanted(want)}`: {reason}"


def _pair_entries(got: list[StateEntry], want: list[StateEntry], by_path: bool,
                  same: Callable[[StateEntry, StateEntry], bool]
                  ) -> tuple[list[tuple[StateEntry, StateEntry]], list[StateEntry], list[StateEntry]]:
    """Pair the reference's entries with the submission's: the same path and `same` first (two layers built in
    another order, or two models side by side, repeat their paths: `kernel` of each); then (unless paths must
    match) by `same` (a Sequential with activations between its layers numbers them 0, 2, 4); then by path, the
    pair whose difference is the message. Returns the pairs in the reference's order, the reference's unpaired
    entries and the submission's."""
    left = list(got)
    matched: dict[int, StateEntry] = {}
    for rule in ("exact", "same", "path"):
        if rule == "same" and by_path:
            continue
        for i, w in enumerate(want):
            if i in matched:
                continue
            match = next((g for g in left if (g.path == w.path or rule == "same")
                          and (rule == "path" or same(g, w))), None)
            if match is not None:
                left.remove(match)
                matched[i] = match
    pairs = [(matched[i], w) for i, w in enumerate(want) if i in matched]
    lost = [w for i, w in enumerate(want) if i not in matched]
    return pairs, lost, left


def _entry_problem(g: StateEntry, w: StateEntry, policy: DtypePolicy, public: bool) -> str | None:
    if not _type_ok(g, w):
        return _type_message(g, w)
    if g.shape != w.shape:
        if public:
            return f"`{g.path}` has {_shape_text(g.shape)}, expected {_shape_text(w.shape)}"
        return f"`{g.path}` has the wrong shape (hidden test)"
    if g.dtype is not None and w.dtype is not None:
        clause = dtypes.policy_problem(g.dtype, w.dtype, policy)
        if clause is not None:
            return f"`{g.path}` {clause}"
    return None


def _listing(mine: list[StateEntry], theirs: list[StateEntry], most: int = 8) -> str:
    """Both sides' entries of one kind: the submission's by path and shape, the reference's by shape (its names
    are the reference's own; the shapes follow from the statement)."""
    def shown(entries: list[str]) -> str:
        return ", ".join(entries[:most]) + (", ..." if len(entries) > most else "")

    yours = shown([f"`{x.path}` {tuple(x.shape or ())}" for x in mine])
    reference = shown([str(tuple(x.shape or ())) for x in theirs])
    return f" (yours: {yours or 'none'}; the reference's: {reference})"


def _layer_kinds(got: ModelState, want: ModelState) -> str | None:
    """Where the two models build other kinds of layers (counted among those holding parameters of their own):
    " (layers: `LayerNorm` 2 in the reference's model, 1 in yours)". None when the kinds agree or are unknown."""
    if not got.layers or not want.layers:
        return None
    # Flax's own layer classes only: a class of the program's own is named as its author pleased.
    mine = Counter(layer.kind for layer in got.layers if layer.kind != "Module")
    theirs = Counter(layer.kind for layer in want.layers if layer.kind != "Module")
    differ = sorted(kind for kind in set(mine) | set(theirs) if mine[kind] != theirs[kind])
    if not differ:
        return None
    return " (layers: " + "; ".join(f"`{kind}` {theirs[kind]} in the reference's model, {mine[kind]} in yours"
                                    for kind in differ[:6]) + ")"


def _plural(entry: StateEntry, n: int) -> str:
    name = "plain array" if entry.base == "array" else _wanted(entry)
    return f"{n} {name}{'' if n == 1 else 's'}"


def compare_state(got: ModelState, want: ModelState, settings: StateChecks, policy: DtypePolicy,
                  tol: Tolerance, public: bool, got_arrays: tuple[np.ndarray, ...] = (),
                  want_arrays: tuple[np.ndarray, ...] = ()) -> str | None:
    """Why the submission's model state differs from the reference's, or None when it matches."""
    if got.error:
        return f"the model could not be described: {got.error}"
    if got.truncated:
        return "the model holds more state than the grader describes (512 entries): far more than this problem needs"
    by_path = settings.paths == "exact"

    def same(g: StateEntry, w: StateEntry) -> bool:
        return _entry_problem(g, w, policy, public=True) is None

    pairs, lost, extra = _pair_entries(got.variables, want.variables, by_path, same)
    for g, w in pairs:
        problem = _entry_problem(g, w, policy, public)
        if problem is not None:
            return problem
    if lost and not got.variables:
        if not got.roots and got.linen:
            return (f"no nnx.Module was built while your function ran: `{got.linen[0]}` is a Flax Linen module "
                    "(`flax.linen.Module`: `@nn.compact`, `init` and `apply`), the older Flax API. This course uses "
                    "Flax NNX: subclass `nnx.Module`, create each parameter in `__init__` as `nnx.Param(...)` with "
                    "keys from `nnx.Rngs`, and call the module directly")
        if not got.roots:
            return ("no nnx.Module was built while your function ran: the problem asks for a module that holds "
                    "its parameters as nnx.Param attributes (so optimizers and `nnx.state` see them)")
        return (f"your `{got.roots[-1]}` holds no state: its arrays must be module attributes wrapped in "
                f"`{_wanted(lost[0])}` {_why(lost[0])}")
    for w in lost:
        # The most likely culprit among the submission's unpaired entries: the same shape, then the same type.
        culprit = next((g for g in extra if g.shape == w.shape), None)
        if culprit is None and by_path:
            culprit = next((g for g in extra if _type_ok(g, w)), None)
            if culprit is not None and (culprit.shape == w.shape or len(extra) == 1):
                return f"`{culprit.path}` should be named `{w.path}` (the statement names it)"
            return f"the model has no `{w.path}` (the statement names it: {_wanted(w)})"
        if culprit is not None:
            problem = _entry_problem(culprit, w, policy, public)
            if problem is not None:
                return problem
            if by_path:
                return f"`{culprit.path}` should be named `{w.path}` (the statement names it)"
        theirs = [x for x in want.variables if _type_ok(x, w) and x.base == w.base]
        mine = [x for x in got.variables if _type_ok(x, w)]
        if not public:
            return f"the model lacks {_article(_wanted(w))} {_wanted(w)} that the reference's model has (hidden test)"
        counts = (f"the reference's model has {_plural(w, len(theirs))}, yours has {len(mine)}"
                  f"{_layer_kinds(got, want) or _listing(mine, theirs)}")
        if len(mine) < len(theirs):
            return f"the model has no {_wanted(w)} of {_shape_text(w.shape)}: {counts}"
        # As many or more: not one left out, the layers themselves differ (three projections where one is fused).
        return (f"the model's {_wanted(w)}s have other shapes than the reference's: none has "
                f"{_shape_text(w.shape)}; {counts}")
    for g in extra:
        shape = f" of {_shape_text(g.shape)}" if public else ""
        return (f"the model has {_holder(g)} `{g.path}`{shape} that the reference's model does not have: "
                "keep constants as Python numbers, and parameters and state as NNX Variables the problem asks for")
    if settings.values:
        for g, w in pairs:
            if g.value is None or w.value is None:
                continue
            gv, wv = got_arrays[g.value], want_arrays[w.value]
            if not values_close(gv, wv, tol):
                if public and gv.size == 1 and wv.size == 1:
                    held, expected = gv.reshape(()).item(), wv.reshape(()).item()
                    return f"`{g.path}` holds {held:.6g} after the run, expected {expected:.6g}"
                return f"`{g.path}` holds other values than the reference's after the run" + (
                    "" if public else " (hidden test)")
    return None


def state_stage(ctx: StageContext) -> Comparison | None:
    got, want = _part(ctx.got_probes, "state"), _part(ctx.want_probes, "state")
    if not ctx.state_checked or not isinstance(want, ModelState) or want.error:
        return None  # not asked, or the reference could not be described (gradax check reports it)
    if not isinstance(got, ModelState):
        return Comparison(False, "state", "the model was not described: the grader's result channel lost it")
    problem = compare_state(got, want, state_settings(ctx.problem), ctx.problem.dtype, ctx.problem.tolerance,
                            ctx.public, ctx.got_probes.arrays if ctx.got_probes else (),
                            ctx.want_probes.arrays if ctx.want_probes else ())
    return None if problem is None else Comparison(False, "state", problem)


def compare_dropout_layers(got: ModelState, want: ModelState, public: bool) -> str | None:
    """Why the submission's model has fewer nnx.Dropout layers than the reference's, or None. A Dropout holds no
    variables (its RNG stream is left out of them), so a model without the statement's Dropout has the same state
    and, in evaluation mode, the same outputs."""
    if got.dropout_layers >= want.dropout_layers:
        return None
    if public:
        return (f"the model has {got.dropout_layers} nnx.Dropout layer{'s' if got.dropout_layers != 1 else ''} "
                f"where the reference's model has {want.dropout_layers}: a Dropout holds no parameters, so the "
                "outputs in evaluation mode do not show it, but training uses it; build the layers the statement "
                "lists")
    return "the model lacks an nnx.Dropout layer that the reference's model has (hidden test)"


def dropout_layers_stage(ctx: StageContext) -> Comparison | None:
    """Run last: a model that fails another way (a hand-written dropout that `.eval()` does not reach) is told that
    first; this catches the model that passes everything else because its Dropout was left out."""
    got, want = _part(ctx.got_probes, "state"), _part(ctx.want_probes, "state")
    if not ctx.state_checked or not isinstance(want, ModelState) or want.error or not isinstance(got, ModelState):
        return None  # the state stage has spoken for these
    problem = compare_dropout_layers(got, want, ctx.public)
    return None if problem is None else Comparison(False, "state", problem)


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _built_layers(state: ModelState) -> list[tuple[str, tuple[tuple[int, ...], ...]]]:
    """Each layer as what it is, not what it is called: its Flax class (or "Module" for a class of the program's
    own) and its parameters' shapes."""
    return [(layer.kind, tuple(tuple(shape) for shape in layer.shapes)) for layer in state.layers]


def _layer_text(layer: Layer, yours: bool) -> str:
    shapes = ", ".join(str(tuple(shape)) for shape in layer.shapes)
    custom = f"a `{layer.type}`" if yours else "a module of its own"
    name = custom if layer.kind == "Module" else f"a `{layer.kind}`"
    return f"{name} with parameters of shape{'s' if len(layer.shapes) > 1 else ''} {shapes}"


def layer_order_advice(got: ModelState, want: ModelState) -> str | None:
    """Advice when the submission builds the same layers as the reference, in another order. Every Flax layer draws
    a key from the Rngs for each parameter as it is built (a LayerNorm or BatchNorm too, for its scale, though it
    starts at ones), so each layer after the first moved one starts from other values while every shape is right."""
    mine, theirs = _built_layers(got), _built_layers(want)
    if len(theirs) < 2 or mine == theirs or sorted(mine) != sorted(theirs):
        return None
    place = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
    nth = _ORDINALS[place] if place < len(_ORDINALS) else f"{place + 1}th"
    path = got.layers[place].path
    named = f"`{path}`, " if path else ""
    return (f"Your model builds its layers in another order than the statement's: the {nth} layer with parameters "
            f"that yours builds is {named}{_layer_text(got.layers[place], True)}, where the reference's builds "
            f"{_layer_text(want.layers[place], False)}. Each layer draws keys from `rngs` when it is built "
            "(a LayerNorm or BatchNorm too), so the order of construction decides the initial values of every layer "
            "after it: build the layers in the order the statement gives.")


def layer_order_of_tests(failed: Iterable[tuple[ProbeReport | None, ProbeReport | None]]) -> str | None:
    """`layer_order_advice` of the first failed test both of whose models were described."""
    for got, want in failed:
        mine, theirs = _part(got, "state"), _part(want, "state")
        if isinstance(mine, ModelState) and isinstance(theirs, ModelState) and not theirs.error:
            return layer_order_advice(mine, theirs)
    return None


def _part(report: ProbeReport | None, name: str) -> Any:
    return getattr(report.probes, name) if report is not None else None


# ---------------------------------------------------------------- batch invariance

def batch_invariance_stage(ctx: StageContext) -> Comparison | None:
    got = _part(ctx.got_probes, "batch_invariance")
    want = _part(ctx.want_probes, "batch_invariance")
    if want is None or want.error or got is None:
        return None if got is not None or want is None else _lost("batch_invariance")
    arg = ctx.problem.transform_checks.batch_invariance
    name = arg.arg if arg is not None else "x"
    if got.error:
        return Comparison(False, "batch_invariance",
                          f"calling your function on one row `{name}[i:i+1]` raised {got.error}; it must work for "
                          "any batch size")
    assert ctx.got_probes is not None
    full = leaf_pairs(ctx.got, ctx.want)
    if full is None:
        return None  # the structure stage already failed
    for row in got.rows:
        row_out = Output(row.tree, ctx.got_probes.arrays)
        row_pairs = leaf_pairs(row_out, ctx.got)
        if row_pairs is None:
            return Comparison(False, "batch_invariance",
                              f"called on one row `{name}[{row.row}:{row.row + 1}]`, your function returned a "
                              "differently structured result than on the whole batch")
        for (path, g_full, w_full, _, _), (_, g_row, _, _, _) in zip(full, row_pairs, strict=True):
            if w_full.ndim == 0 or w_full.shape[0] != want.batch or g_full.shape != w_full.shape:
                continue  # not a per-row output (or the shape stage speaks for it)
            where = f"the output{path}"
            if g_row.shape != (1, *w_full.shape[1:]):
                shape = f"shape {tuple(g_row.shape)}" if ctx.public else "another shape"
                return Comparison(False, "batch_invariance",
                                  f"called on one row `{name}[{row.row}:{row.row + 1}]`, {where} has {shape}, not "
                                  "(1, ...) like each row of the whole batch: do not squeeze or hard-code the batch "
                                  "size")
            if not values_close(g_row[0], g_full[row.row], ctx.problem.tolerance):
                if _values_speak(g_row[0], g_full[row.row], w_full[row.row], ctx.problem.tolerance):
                    continue
                return Comparison(False, "batch_invariance",
                                  f"row {row.row} of {where} changes with the other rows of the batch: your function "
                                  f"gives row {row.row} other values when it is called on that row alone. It mixes "
                                  "rows, e.g. a mean or norm over the batch axis (axis 0) where the features "
                                  "(axis -1) are meant")
    return None


def _values_speak(alone: np.ndarray, in_batch: np.ndarray, want: np.ndarray, tol: Tolerance) -> bool:
    """Whether a row that changes with the batch is better reported by the values stage: its values on the whole
    batch are wrong by far more (4x) than they change when the row is alone. A formula that loses precision
    (a one-pass variance, as `jax.nn.standardize` computes, cancelling on rows with a large mean) rounds
    differently for another batch shape: "changes with the other rows ... it mixes rows" would send the student
    looking for an axis mistake that is not there. Rows that really mix change about as much as they are wrong
    (a mean over axis 0: 0.4-0.9x on every layernorm test)."""
    if values_close(in_batch, want, tol):
        return False  # right on the batch, other alone: the batch is the cause
    change, error = _max_abs_diff(alone, in_batch), _max_abs_diff(in_batch, want)
    return bool(np.isfinite(change) and np.isfinite(error) and 4 * change < error)


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute difference of two same-shaped arrays, in float64 (0 for empty ones; NaN and inf pass
    through for the caller to test)."""
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))


def _lost(stage: str) -> Comparison:
    return Comparison(False, stage, f"the {stage.replace('_', ' ')} check's result was not reported")


# ---------------------------------------------------------------- gradients

def _pair_gradients(got: list[GradientEntry], want: list[GradientEntry], by_path: bool, tol: Tolerance,
                    got_arrays: tuple[np.ndarray, ...], want_arrays: tuple[np.ndarray, ...]
                    ) -> tuple[list[tuple[GradientEntry, GradientEntry]], list[GradientEntry]]:
    left = list(got)
    pairs, lost = [], []
    for w in want:
        match = next((g for g in left if g.path == w.path), None)
        if match is None and not by_path:
            same_shape = [g for g in left if g.shape == w.shape]
            match = next((g for g in same_shape if values_close(got_arrays[g.value], want_arrays[w.value], tol)),
                         same_shape[0] if same_shape else None)
        if match is None:
            lost.append(w)
        else:
            left.remove(match)
            pairs.append((match, w))
    return pairs, lost


def gradients_stage(ctx: StageContext) -> Comparison | None:
    spec = ctx.problem.transform_checks.gradients
    got, want = _part(ctx.got_probes, "gradients"), _part(ctx.want_probes, "gradients")
    if spec is None or want is None or want.error:
        return None
    if got is None:
        return _lost("gradients")
    target = "your model" if spec.wrt == "params" else "your function"
    if got.error == TRACED_ONLY:
        return Comparison(False, "gradients", f"the gradient through {target} could not be computed: {got.error}")
    if got.error:
        return Comparison(False, "gradients",
                          f"the gradient through {target} could not be computed: {got.error}. Training "
                          "differentiates it: keep the computation in jax (no numpy conversions, no Python control "
                          "flow on values)")
    assert ctx.got_probes is not None and ctx.want_probes is not None
    tol = Tolerance(rtol=spec.rtol if spec.rtol is not None else ctx.problem.tolerance.rtol,
                    atol=spec.atol if spec.atol is not None else ctx.problem.tolerance.atol)
    by_path = spec.wrt == "inputs" or state_settings(ctx.problem).paths == "exact"
    ga, wa = ctx.got_probes.arrays, ctx.want_probes.arrays
    pairs, lost = _pair_gradients(got.entries, want.entries, by_path, tol, ga, wa)
    if lost:
        if not got.entries:
            return Comparison(False, "gradients",
                              "no gradient reaches any nnx.Param of your model: the loss does not depend on a "
                              "Param (plain arrays and values copied out of Params are invisible to `nnx.grad` "
                              "and optimizers)")
        where = _shape_text(list(lost[0].shape)) if ctx.public else "hidden test"
        return Comparison(False, "gradients",
                          f"the loss has no gradient with respect to a parameter of the reference's model ({where})")
    for g, w in pairs:
        gv, wv = ga[g.value], wa[w.value]
        if values_close(gv, wv, tol):
            continue
        what = f"`{g.path}`" if spec.wrt == "inputs" else f"the parameter `{g.path}`"
        if gv.shape == wv.shape and not np.any(gv) and np.any(wv):
            return Comparison(False, "gradients",
                              f"the gradient of the loss with respect to {what} is zero, though the values are "
                              "right: `jax.lax.stop_gradient` (or a value computed outside the traced computation) "
                              "cuts it off, so training would never change it")
        detail = ""
        if ctx.public and gv.shape == wv.shape:
            detail = f" (max abs error {_max_abs_diff(gv, wv):.3g})"
        if _slightly_off(gv, wv):
            return Comparison(False, "gradients",
                              f"the gradient of the loss with respect to {what} differs slightly from the "
                              f"reference's{detail}, though the values are within tolerance: a constant of the "
                              "formula differs (an epsilon, a divisor such as n - 1, a scale), which the gradient "
                              "shows where the values barely do")
        return Comparison(False, "gradients",
                          f"the gradient of the loss with respect to {what} differs from the reference's{detail}, "
                          "though the values are right: something in the forward pass blocks or bends gradients "
                          "(`jax.lax.stop_gradient` on a statistic, a detached copy, a non-differentiable cast)")
    return None


def _slightly_off(got: np.ndarray, want: np.ndarray) -> bool:
    """A gradient within 1 % of the reference's (max abs error against its largest entry): the path is intact and
    a constant differs (layernorm with PyTorch's epsilon: 6e-5 of 0.5). A stop_gradient or a detached copy changes
    the gradient by its own size."""
    if got.shape != want.shape:
        return False
    scale, error = float(np.max(np.abs(want.astype(np.float64)), initial=0.0)), _max_abs_diff(got, want)
    return bool(np.isfinite(error) and scale > 0 and error < 0.01 * scale)


# ---------------------------------------------------------------- retrace budget

def retrace_stage(ctx: StageContext) -> Comparison | None:
    spec = ctx.problem.transform_checks.retrace
    got = _part(ctx.got_probes, "retrace")
    if spec is None or _part(ctx.want_probes, "retrace") is None:
        return None
    if got is None:
        return _lost("retrace")
    if got.traces <= spec.max_traces:
        return None
    return Comparison(False, "retrace",
                      f"one call of your function traced the same jitted code {got.traces} times (this problem "
                      f"allows {spec.max_traces} per jitted function): every trace recompiles, so each training step "
                      "pays for compilation. Something passed into `nnx.jit` changes every step, or a new jitted "
                      "function is made each step. Create the jitted step once (at module level, outside the loop), "
                      "pass numbers in as arrays (`jnp.asarray(lr)`), and do not mark changing values static")


# ---------------------------------------------------------------- eval determinism

def eval_determinism_stage(ctx: StageContext) -> Comparison | None:
    spec = ctx.problem.transform_checks.eval_determinism
    got, want = _part(ctx.got_probes, "eval_determinism"), _part(ctx.want_probes, "eval_determinism")
    if spec is None or want is None or want.error:
        return None
    if got is None:
        return _lost("eval_determinism")
    call = f"model({', '.join(spec.args)})"
    if got.error == TRACED_ONLY:
        return Comparison(False, "eval_determinism", f"`model.eval()` could not be checked: {got.error}")
    if got.error or got.first is None or got.second is None:
        return Comparison(False, "eval_determinism",
                          f"after `model.eval()`, calling `{call}` raised {got.error}: the model the statement "
                          f"describes is called as `{call}`")
    assert ctx.got_probes is not None
    arrays = ctx.got_probes.arrays
    pairs = leaf_pairs(Output(got.second, arrays), Output(got.first, arrays))
    if pairs is None or any(not values_close(g, w, ctx.problem.tolerance) for _, g, w, _, _ in pairs):
        return Comparison(False, "eval_determinism",
                          f"after `model.eval()`, calling `{call}` twice gave different results: in evaluation mode "
                          "Dropout must be off and BatchNorm must use (and keep) its running averages. Use "
                          "nnx.Dropout / nnx.BatchNorm, which follow `.eval()` and `.train()`, instead of drawing "
                          "masks or batch statistics yourself")
    return None


EARLY: tuple[Callable[[StageContext], Comparison | None], ...] = (state_stage, batch_invariance_stage)
LATE: tuple[Callable[[StageContext], Comparison | None], ...] = (gradients_stage, retrace_stage,
                                                                  eval_determinism_stage, dropout_layers_stage)


def staged(cmp: Comparison, ctx: StageContext) -> Comparison:
    """The test's first failing stage, from the output comparison `cmp` and the model's stages."""
    if not cmp.ok and cmp.stage in ("structure", "shape", "dtype"):
        return cmp
    for stage in EARLY:
        failure = stage(ctx)
        if failure is not None:
            return failure
    if not cmp.ok:
        return cmp
    for stage in LATE:
        failure = stage(ctx)
        if failure is not None:
            return failure
    return cmp
