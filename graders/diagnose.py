"""Name the likely mistake: known wrong solutions matched by their outputs (or, for mistakes only a
model stage rejects, by that stage's result), Flax-version pitfalls matched by the error they raise, and
the pitfalls the dtype and model stages reveal, matched by the stage and its message, for a submission no
known mistake of its problem resembles.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from graders import model_checks, nnx_names
from graders.compare import Output, outputs_match
from graders.model_checks import ProbeReport, StageContext
from graders.problem import KnownMistake, Problem, Tolerance


@dataclass(frozen=True)
class Pitfall:
    id: str
    pattern: re.Pattern[str]
    advice: str
    # Advice that depends on what the error names (the name `flax.nnx` lacks): made from the match.
    advise: Callable[[re.Match[str]], str] | None = None


# Errors that code written for older Flax (or for a different harness) raises on Flax 0.12.
PITFALLS: tuple[Pitfall, ...] = (
    Pitfall(
        "plain-list-of-modules",
        # Flax 0.12 words it two ways: "assigned to static attribute" when a list of modules is assigned,
        # "in static attribute" when modules are appended to a list assigned empty.
        re.compile(r"Found (unexpected )?data on value of type .{0,80}?(assigned to|in) static attribute"),
        "Flax 0.12 treats a plain Python list (or dict) stored on a module as static, so modules inside it "
        "are not tracked. Wrap it: `self.layers = nnx.List([nnx.Linear(...), ...])` (`nnx.Dict({...})` "
        "for a dict, or use `nnx.Sequential`).",
    ),
    Pitfall(
        "variable-in-place-arithmetic",
        re.compile(r"In-place operations are no longer supported for Variable"),
        "Flax 0.12 no longer supports `self.count += 1` on a Variable. Update its value instead: "
        "`self.count[...] += 1`.",
    ),
    Pitfall(
        "optimizer-update-without-model",
        re.compile(r"Missing required argument `grads`"),
        "Since Flax 0.11, `Optimizer.update` takes the model too: `optimizer.update(model, grads)`.",
    ),
    Pitfall(
        "optimizer-without-wrt",
        re.compile(r"Missing required argument `wrt`"),
        "Since Flax 0.11, `nnx.Optimizer` needs `wrt`: `nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)`.",
    ),
    Pitfall(
        "optimizer-model-attribute",
        re.compile(r"Optimizer does not have attribute '(model|target)'"),
        "Since Flax 0.11, `nnx.Optimizer` no longer holds the model: keep your own reference to it and "
        "pass it to `optimizer.update(model, grads)`.",
    ),
    Pitfall(
        "rngs-stream-missing",
        re.compile(r"No RngStream named '(\w+)' found in Rngs"),
        "This `nnx.Rngs` has no stream of that name. `rngs()` draws from the `default` stream, which only "
        "`nnx.Rngs(seed)` (a positional seed) creates; `nnx.Rngs(params=seed)` has only `rngs.params()`.",
    ),
    Pitfall(
        "float-shape",
        re.compile(r"Shapes must be 1D sequences of concrete values of integer type, got .*\d\.\d*"),
        "Numeric arguments arrive as Python floats (features 4 arrives as 4.0). Cast sizes before using "
        "them as shapes: `int(features)`.",
    ),
    Pitfall(
        "float-seed",
        re.compile(r"Invalid rng value: -?\d+\.\d*"),
        "`nnx.Rngs` needs an integer seed, and the seed arrives as a float: `nnx.Rngs(int(seed))`.",
    ),
    Pitfall(
        "float-as-integer",
        re.compile(r"'float' object cannot be interpreted as an integer"),
        "Numeric arguments arrive as Python floats; cast counts before `range(...)` or sizes: `int(steps)`.",
    ),
    Pitfall(
        "jit-over-scalar-arguments",
        re.compile(r"ConcretizationTypeError|TracerIntegerConversionError"),
        "A value that has to be a plain Python number (a seed, a size, a loop count) became a tracer, "
        "usually because the scalar arguments went through `jax.jit` / `nnx.jit`. Cast them with `int(...)` "
        "outside the jitted function and pass only arrays and modules into it (or mark them static with "
        "`static_argnums`).",
    ),
    Pitfall(
        "float-prng-seed",
        re.compile(r"PRNG key seed must be an integer|seed.{0,40}must be an integer", re.I),
        "Random keys need an integer seed, and the seed arrives as a float: `jax.random.key(int(seed))`.",
    ),
    Pitfall(
        "reads-stdin",
        # input()'s own message; a hidden test shows the class name only, and a debugger's prompt (`breakpoint()`)
        # quits with BdbQuit at the end of its input.
        re.compile(r"^EOFError: (EOF when reading a line)?$|^BdbQuit\b"),
        "Your code reads standard input (`input()`, `sys.stdin`, or the debugger prompt of `breakpoint()`), and "
        "there is none while grading: the function gets everything it needs as its arguments. Remove the "
        "`input()` and `breakpoint()` calls.",
    ),
    Pitfall(
        "batchnorm-mode-missing",
        re.compile(r"No `use_running_average` argument was provided"),
        "`nnx.BatchNorm` needs to know its mode: call `model.train()` / `model.eval()` (or pass "
        "`use_running_average=` when calling it).",
    ),
    Pitfall(
        "nnx-name-missing",
        re.compile(r"Module flax\.nnx has no attribute '(\w{1,64})'|cannot import name '(\w{1,64})' from 'flax\.nnx'"),
        "`flax.nnx` has no such name: check it against the NNX API.",
        advise=lambda match: nnx_names.advice(match.group(1) or match.group(2)),
    ),
    Pitfall(
        "dropout-mode-missing",
        re.compile(r"No `deterministic` argument was provided to \w+"),
        "`nnx.Dropout` (and the dropout inside `nnx.MultiHeadAttention` when `dropout_rate > 0`) needs to know "
        "its mode: call `model.train()` / `model.eval()`, or pass `deterministic=` when building or calling it. "
        "Leave `dropout_rate` at its default 0 unless the statement asks for dropout.",
    ),
    Pitfall(
        "dropout-without-rngs",
        re.compile(r"`deterministic` is False, but no `rngs` argument was provided to \w+"),
        "A Dropout in training mode draws a random mask, so it needs keys: build it with "
        "`nnx.Dropout(rate, rngs=rngs)` (it keeps a stream of its own, from `rngs.dropout`), or pass `rngs=` when "
        "calling it.",
    ),
    Pitfall(
        "attention-decode-missing",
        re.compile(r"No `decode` argument was provided to MultiHeadAttention"),
        "`nnx.MultiHeadAttention` needs `decode`: build it with `decode=False` to attend over the whole sequence "
        "at once (`decode=True` keeps a key/value cache for generating one token at a time, after `init_cache`).",
    ),
    Pitfall(
        "initializer-not-called",
        # The layer called the factory as if it were the initializer: `he_normal(key, shape, dtype)` returns a
        # function, stored as the parameter; factories with fewer arguments refuse the three.
        re.compile(r"'function' object is not subscriptable|\b(constant|normal|uniform|truncated_normal|\w+_normal"
                   r"|\w+_uniform|variance_scaling|orthogonal)\(\) takes from \d+ to \d+ positional arguments "
                   r"but 3 were given"),
        "An initializer factory was passed without calling it: `kernel_init=nnx.initializers.he_normal` hands the "
        "layer the factory, which returns a function where an array should be. Call it: "
        "`kernel_init=nnx.initializers.he_normal()`, `bias_init=nnx.initializers.constant(0.1)` "
        "(`nnx.initializers.zeros` and `ones` are initializers themselves: no parentheses).",
    ),
)


@dataclass(frozen=True)
class StagePitfall:
    id: str
    stages: tuple[str, ...]
    pattern: re.Pattern[str]  # searched in the failed test's message (graders/model_checks.py, dtypes.py)
    advice: str


# What the structure, dtype and model stages reveal, bank-wide: the test's message says what differs, the advice says
# where that usually comes from and why it matters for training. First match wins.
STAGE_PITFALLS: tuple[StagePitfall, ...] = (
    StagePitfall(
        "reduced-precision",
        ("dtype", "state"),
        re.compile(r"has dtype (bfloat16|float16|float8\w*), expected float(32|64)"),
        "Something is held or computed in reduced precision: a layer built with `dtype=jnp.bfloat16` or "
        "`param_dtype=jnp.bfloat16` (or float16), an input cast with `.astype(...)`, or a "
        "`jnp.array(..., dtype=...)`. bfloat16 keeps 2-3 significant digits and float16 3-4, so no tolerance meant "
        "for float32 can accept them. Leave the layers' `dtype` and `param_dtype` at their float32 defaults (mixed "
        "precision is a choice for large models on accelerators, made on purpose).",
    ),
    StagePitfall(
        "integer-result",
        ("dtype",),
        re.compile(r"an integer where a float is expected"),
        "The result became integers: `//` instead of `/`, `jnp.argmax` or `jnp.round` where values were "
        "meant, or an array built from Python ints. Keep the computation in floats.",
    ),
    StagePitfall(
        "plain-array-attribute",
        ("state",),
        re.compile(r"is a plain (jax\.Array|numpy array)|holds no state"),
        "An array assigned to a module as it is (`self.w = jax.random.normal(...)`) is not an NNX Variable: "
        "the forward pass can use it, but `nnx.state(model, nnx.Param)`, `nnx.grad` and "
        "`nnx.Optimizer(model, tx, wrt=nnx.Param)` skip it, so training would never change it. Create "
        "every trainable array as `nnx.Param(value)` and read it as `self.w[...]`; keep running statistics "
        "in `nnx.BatchStat` and other state in an `nnx.Variable` (subclass).",
    ),
    StagePitfall(
        "statistics-missing",
        ("state",),
        re.compile(r"the model has no nnx\.BatchStat of|the model lacks an nnx\.BatchStat"),
        "The reference's model keeps running statistics (`nnx.BatchStat`: BatchNorm's `mean` and `var`) that yours "
        "does not. Normalizing with statistics computed by hand in the forward pass leaves nothing for evaluation "
        "mode to use; `nnx.BatchNorm` moves its running averages in training mode and uses them after `.eval()`.",
    ),
    StagePitfall(
        "parameter-shapes-differ",
        ("state",),
        re.compile(r"have other shapes than the reference's"),
        "Your layers hold parameters of other shapes than the statement's model, though not fewer of them: "
        "compare each layer's input and output sizes with the statement, and build the layers it lists, no more "
        "and no fewer (one fused projection such as `nnx.Linear(features, 3 * features)` is one layer, not three "
        "of `features` outputs each).",
    ),
    StagePitfall(
        "layers-differ",
        ("state",),
        re.compile(r"\(layers: `\w+` \d+ in the reference's model"),
        "Your model builds other layers than the statement's (the message counts them by kind). Build each layer "
        "the statement lists, of the class it names: a layer left out, one layer used in two places (a single "
        "LayerNorm before both sub-layers), or another kind in its place (`nnx.RMSNorm` for `nnx.LayerNorm`) holds "
        "other parameters, computes other values and trains differently.",
    ),
    StagePitfall(
        "parameter-missing",
        ("state",),
        re.compile(r"the model has no nnx\.\w+ of|the model lacks an? nnx\."),
        "The reference's model holds a parameter yours does not. Either a layer was built without it (a bias "
        "left out: `nnx.Linear(..., use_bias=False)`, or a hand-written module with no `bias`), or it is an array "
        "made inside the function or in `__call__` (a class token, position embeddings, a scale): a constant "
        "made again on every call, not a parameter, so nothing trains it and `nnx.state(model)` does not list it. "
        "Create every parameter once in `__init__` as an attribute, `self.cls_token = nnx.Param(...)`, and read "
        "it in `__call__`; keep the layers' `use_bias` at its default unless the statement says otherwise.",
    ),
    StagePitfall(
        "list-for-array",
        ("structure",),
        re.compile(r"should be a single array, got a (list|tuple) of \d+"),
        "The function returned a Python list (or tuple) where one array is expected. Collect the values, then "
        "stack them into one array before returning: `jnp.stack(values)` (or `jnp.array(values)`); a value "
        "per step, such as a loss, makes a 1-D array.",
    ),
    StagePitfall(
        "state-held-as-param",
        ("state",),
        re.compile(r"is an nnx\.Param, expected"),
        "Everything held as `nnx.Param` is what optimizers train (`wrt=nnx.Param`): a counter, a running "
        "statistic or a cache kept as a Param would be changed by every optimizer step. Give state that is "
        "not trained its own Variable type (`nnx.BatchStat`, `nnx.Cache`, or a subclass of `nnx.Variable`).",
    ),
    StagePitfall(
        "linen-module",
        ("state",),
        re.compile(r"is a Flax Linen module"),
        "Flax has two module APIs. Linen (`flax.linen`) declares parameters with `self.param` inside "
        "`@nn.compact` and runs through `model.init(key, x)` and `model.apply(params, x)`; NNX (`flax.nnx`, "
        "this course) keeps them on the object: `self.kernel = nnx.Param(...)` in `__init__`, keys from "
        "`nnx.Rngs(seed)`, and `model(x)` to call it. Rewrite the module as an `nnx.Module`.",
    ),
    StagePitfall(
        "no-module",
        ("state",),
        re.compile(r"no nnx\.Module was built"),
        "The computation is right, but it is written with plain arrays and functions: nothing holds the "
        "parameters, so nothing could train them. Build the model as an `nnx.Module` (or the `nnx` layer "
        "the statement names) whose parameters are `nnx.Param` attributes, then call it.",
    ),
    StagePitfall(
        "model-only-traced",
        ("gradients", "eval_determinism"),
        re.compile(r"the model was built only inside a transform"),
        "The whole function runs under `jax.jit` (or `nnx.jit`, `vmap`), so the model exists only while it is "
        "traced, and nothing can train or evaluate it afterwards. Build the model in plain Python and jit the step "
        "that uses it: `model = MyModel(..., rngs=nnx.Rngs(int(seed)))`, then `nnx.jit(lambda m, x: m(x))(model, x)`.",
    ),
    StagePitfall(
        "constant-differs",
        ("gradients",),
        re.compile(r"differs slightly from the reference's"),
        "The values agree within tolerance, but the gradient shows that a constant of the formula is not the "
        "statement's: compare the epsilon (nnx.LayerNorm's default is 1e-6, PyTorch's 1e-5), the divisor of a "
        "variance (`n`, not `n - 1`), and any scale factor with what the statement gives.",
    ),
    StagePitfall(
        "blocked-gradient",
        ("gradients",),
        re.compile(r"is zero, though|no gradient reaches|blocks or bends|could not be computed"),
        "Right values are not enough to train: the gradient must flow from the loss back to every parameter "
        "(and input). `jax.lax.stop_gradient`, a value taken out of jax (`float(...)`, `.item()`, "
        "`np.asarray`), a Param's value copied into a constant once, or a hard cast cut or bend that path, "
        "and the forward pass does not show it. Compute everything from the Params, in jax, inside the call.",
    ),
    StagePitfall(
        "retrace-every-step",
        ("retrace",),
        re.compile(r"traced the same jitted code \d+ times"),
        "Every trace of a jitted function compiles it again, which costs far more than the step itself. The "
        "usual causes: `nnx.jit(step)` (or `jax.jit`) written inside the loop, so each step makes a new "
        "function with an empty cache; a Python number that changes every step passed as a static argument; "
        "a new Module or Optimizer object each step. Make the jitted step once, outside the loop, and pass "
        "changing numbers as arrays.",
    ),
    StagePitfall(
        "rows-mixed",
        ("batch_invariance",),
        re.compile(r"changes with the other rows"),
        "Each example of a batch must be computed from its own row alone: a statistic over axis 0 "
        "(`x.mean(axis=0)`, `x.var(0)`, a norm without `axis=-1`) mixes the rows, so an answer depends on "
        "what else is in the batch. Reduce over the feature axis (`axis=-1, keepdims=True`).",
    ),
    StagePitfall(
        "batch-size-assumed",
        ("batch_invariance",),
        re.compile(r"do not squeeze|any batch size|differently structured"),
        "The function assumes a batch size: `.squeeze()` drops a batch of one, and `reshape(2, ...)` or a "
        "loop over a fixed count hard-codes it. Keep the batch axis and use `x.shape[0]` or `-1`.",
    ),
    StagePitfall(
        "eval-ignored",
        ("eval_determinism",),
        re.compile(r"after `model\.eval\(\)`"),
        "`model.eval()` switches every nnx.Dropout to deterministic and every nnx.BatchNorm to its running "
        "averages, but only in layers that read their mode: a mask drawn with `jax.random` by hand, "
        "`deterministic=False` or `use_running_average=False` passed at call time, or a layer kept outside "
        "the model override it. Let the layers follow `.eval()` / `.train()`.",
    ),
)


def stage_pitfall_for(stage: str | None, message: str | None) -> StagePitfall | None:
    for pitfall in STAGE_PITFALLS:
        if stage in pitfall.stages and pitfall.pattern.search(message or ""):
            return pitfall
    return None


def pitfall_for(error_type: str, message: str) -> Pitfall | None:
    text = f"{error_type}: {message}"
    for pitfall in PITFALLS:
        match = pitfall.pattern.search(text)
        if match is not None:
            return replace(pitfall, advice=pitfall.advise(match)) if pitfall.advise is not None else pitfall
    return None


def matching_mistake(
    submission: Mapping[int, Output],
    mistakes: Sequence[tuple[KnownMistake, Mapping[int, Output]]],
    tol: Tolerance,
) -> KnownMistake | None:
    """The first known mistake whose outputs equal the submission's on every test it answered.

    Only tests where both produced an output count; at least one must, so a submission that crashed
    everywhere is never given a known mistake's message.
    """
    for mistake, outputs in mistakes:
        shared = [i for i in submission if i in outputs]
        if shared and all(outputs_match(submission[i], outputs[i], tol) for i in shared):
            return mistake
    return None


def matching_check_mistake(
    stage: str,
    problem: Problem,
    submission: Mapping[int, Output],
    probes: Mapping[int, ProbeReport],
    mistakes: Sequence[tuple[KnownMistake, Mapping[int, Output], Mapping[int, ProbeReport]]],
) -> KnownMistake | None:
    """The first known mistake `rejected_by` this stage that the submission resembles: the same outputs
    on every test both answered, and (for state and gradients) the same model state or gradients."""
    for mistake, outputs, mistake_probes in mistakes:
        if mistake.rejected_by != stage:
            continue
        shared = [i for i in submission if i in outputs]
        if not shared or not all(outputs_match(submission[i], outputs[i], problem.tolerance) for i in shared):
            continue
        if stage in ("state", "gradients"):
            # Judge the submission against the mistake as if the mistake were the reference: no failure
            # means the same state (or the same gradients).
            run = model_checks.state_stage if stage == "state" else model_checks.gradients_stage
            comparable = [i for i in shared if i in probes and i in mistake_probes]
            if not comparable or any(
                run(StageContext(problem, submission[i], outputs[i], probes[i], mistake_probes[i], True)) is not None
                for i in comparable
            ):
                continue
        return mistake
    return None
