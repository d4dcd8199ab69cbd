"""Name the likely mistake: known wrong solutions matched by their outputs (or, for mistakes only a
model stage rejects, by that stage's result), and Flax-version pitfalls matched by the error they raise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from graders import model_checks
from graders.compare import Output, outputs_match
from graders.model_checks import ProbeReport, StageContext
from graders.problem import KnownMistake, Problem, Tolerance


@dataclass(frozen=True)
class Pitfall:
    id: str
    pattern: re.Pattern[str]
    advice: str


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
        "batchnorm-mode-missing",
        re.compile(r"No `use_running_average` argument was provided"),
        "`nnx.BatchNorm` needs to know its mode: call `model.train()` / `model.eval()` (or pass "
        "`use_running_average=` when calling it).",
    ),
)


def pitfall_for(error_type: str, message: str) -> Pitfall | None:
    text = f"{error_type}: {message}"
    for pitfall in PITFALLS:
        if pitfall.pattern.search(text):
            return pitfall
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
