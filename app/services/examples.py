"""Public examples as a student can use them: concrete input values, a snippet that builds them, and the
expected output, before any Run.

Only public tests are ever described here; hidden tests never leave the server. Inputs come from the same
case builder the grader uses and expected outputs from the same cached reference outputs, so what the page and
`gradax pull` show is exactly what Run compares against.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from graders.cases import CaseInput, build_cases
from graders.compare import Output, preview
from graders.engine import Grader
from graders.problem import ArgSpec, LoadedProblem, RandomArray
from graders.reference import ReferenceError

log = logging.getLogger("gradax.examples")

# Arrays up to this many elements are written out in the snippet; larger ones are rebuilt from their seed.
LITERAL_ELEMENTS = 64


def array_json(arr: np.ndarray) -> dict[str, Any]:
    """An array as JSON that round-trips exactly (float32 values are exact in a float64 literal)."""
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "values": arr.tolist()}


def _literal(arr: np.ndarray) -> str:
    return np.array2string(arr, separator=", ", threshold=LITERAL_ELEMENTS + 1, floatmode="unique",
                           max_line_width=88).replace("\n", "\n" + " " * 10)


def _random_expr(spec: RandomArray) -> str:
    """The numpy expression graders.cases uses for a generated array, written out."""
    rng = f"np.random.default_rng({spec.seed})"
    shape = f"({', '.join(str(d) for d in spec.shape)}{',' if len(spec.shape) == 1 else ''})"
    if spec.random == "normal":
        expr = f"{rng}.standard_normal({shape})"
        return expr if spec.scale == 1.0 else f"{expr} * {spec.scale!r}"
    if spec.random == "uniform":
        return f"{rng}.uniform({spec.low!r}, {spec.high!r}, size={shape})"
    return f"{rng}.integers({int(spec.low)}, {int(spec.high)}, size={shape}, endpoint=False)"


def _numpy_dtype(spec: ArgSpec) -> str:
    return "float32" if spec.dtype == "bfloat16" else spec.dtype  # as graders.cases ships it


def snippet(loaded: LoadedProblem, raw_args: dict[str, Any], case: CaseInput) -> str:
    """Python that builds this test's arguments exactly as the grader passes them, then calls the function."""
    problem = loaded.problem
    lines = ["import numpy as np", "import jax.numpy as jnp", ""]
    for spec, value in zip(problem.args, case.args, strict=True):
        if spec.kind == "scalar":
            lines.append(f"{spec.name} = {float(value)!r}  # scalars arrive as Python floats")
            continue
        raw = raw_args.get(spec.name)
        assert isinstance(value, np.ndarray)
        if isinstance(raw, RandomArray) and value.size > LITERAL_ELEMENTS:
            source = f"({_random_expr(raw)}).astype(np.{_numpy_dtype(spec)})"
            lines.append(f"{spec.name} = jnp.asarray({source}, dtype=jnp.{spec.dtype})")
        else:  # the values printed exactly (shortest repr that round-trips in the array's dtype)
            lines.append(f"{spec.name} = jnp.array({_literal(value)}, dtype=jnp.{spec.dtype})")
    lines += ["", f"out = {problem.function}({', '.join(a.name for a in problem.args)})"]
    return "\n".join(lines) + "\n"


def output_json(out: Output) -> dict[str, Any]:
    return {"tree": out.tree, "leaves": [array_json(np.asarray(leaf)) for leaf in out.leaves]}


def output_text(out: Output) -> str:
    """The expected output in the report's own format (graders.compare.preview), structure included."""

    def walk(tree: dict[str, Any], indent: str) -> str:
        kind = tree.get("t")
        if kind == "leaf":
            return preview(np.asarray(out.leaves[tree["i"]])).replace("\n", "\n" + indent)
        inner = indent + "  "
        if kind == "dict":
            items = [f"{inner}{k!r}: {walk(c, inner)}" for k, c in zip(tree["k"], tree["c"], strict=True)]
            return "{\n" + ",\n".join(items) + "\n" + indent + "}"
        open_, close = ("(", ")") if kind == "tuple" else ("[", "]")
        items = [inner + walk(c, inner) for c in tree["c"]]
        return open_ + "\n" + ",\n".join(items) + "\n" + indent + close

    return walk(out.tree, "")


def public_inputs(loaded: LoadedProblem) -> list[dict[str, Any]]:
    """Each public test's concrete arguments and a snippet that builds them (no reference run needed)."""
    problem = loaded.problem
    cases = build_cases(problem, public_only=True)
    examples = []
    for test, case in zip(problem.tests.public, cases, strict=True):
        args = []
        for spec, value in zip(problem.args, case.args, strict=True):
            entry: dict[str, Any] = {"name": spec.name, "kind": spec.kind}
            if isinstance(value, np.ndarray):
                entry.update(array_json(value))
                entry["dtype"] = spec.dtype
                entry["preview"] = preview(value)
            else:
                entry["value"] = float(value)
            args.append(entry)
        examples.append({"name": test.name, "description": test.description, "args": args,
                         "snippet": snippet(loaded, dict(test.args), case)})
    return examples


def public_examples(loaded: LoadedProblem, grader: Grader) -> list[dict[str, Any]]:
    """`public_inputs` plus each test's expected output from the cached reference outputs.

    Computing them the first time runs the trusted reference (seconds); afterwards they come from the cache.
    If the reference fails, the inputs are still shown and `expected` is null.
    """
    examples = public_inputs(loaded)
    try:
        _cases, reference = grader.reference_for(loaded)
    except (ReferenceError, ValueError) as exc:
        log.error("%s: no expected outputs for the public examples: %s", loaded.id, exc)
        reference = None
    for index, example in enumerate(examples):
        out = reference.reference.outputs.get(index) if reference is not None else None
        example["expected"] = output_json(out) if out is not None else None
        example["expected_text"] = output_text(out) if out is not None else None
    return examples
