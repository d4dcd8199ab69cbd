"""The schema of what a child reports about the model and the transform checks, beside a test's outputs.

The child sends a `probes` object in its `test` event (built by `graders/child/model_probe.py`). It is hostile
input like every byte from a child: validated here with pydantic (`extra="forbid"`, exact types, caps on
every list and string, array indices in range) before the parent compares anything. A violation makes
the test an error charged to the submission. The event schema of the result channel can embed `Probes`
as the type of the `probes` field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, ValidationError

MAX_VARIABLES = 512
MAX_ROOTS = 64
MAX_ROWS = 8
MAX_TREE_DEPTH = 32
MAX_TREE_NODES = 10_000
MAX_ERROR = 2000

PATH = r"^[A-Za-z0-9_.\[\]\-]{0,200}$"
IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
DTYPE = r"^[a-z][a-z0-9_]{0,31}$"
# The nearest built-in Flax class of a state leaf: a Variable type, "array" for a plain jax/numpy array
# stored on a module, "other" for anything else NNX keeps as state.
Base = Literal["Param", "BatchStat", "Cache", "Intermediate", "Perturbation", "Variable", "OptState", "array", "other"]

Index = Annotated[StrictInt, Field(ge=0, le=1_000_000)]
Dim = Annotated[StrictInt, Field(ge=0, le=2**40)]
ErrorText = Annotated[str, Field(max_length=MAX_ERROR)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StateEntry(Strict):
    """One leaf of `nnx.state(model)`: where it lives, what holds it, its shape and dtype (no values)."""

    path: Annotated[str, Field(pattern=PATH)]
    type: Annotated[str, Field(pattern=IDENT)]
    base: Base
    shape: Annotated[list[Dim], Field(max_length=32)] | None = None
    dtype: Annotated[str, Field(pattern=DTYPE)] | None = None
    value: Index | None = None  # index of its value among the message's arrays, when values were asked


class Layer(Strict):
    """A module that holds parameters of its own: its class and their shapes (no values), in attribute order."""

    type: Annotated[str, Field(pattern=IDENT)]
    # The Flax layer class it is or derives from (`Linear`, `LayerNorm`), "Module" for a class of the program's own.
    kind: Annotated[str, Field(pattern=IDENT)] = "Module"
    path: Annotated[str, Field(pattern=PATH)] = ""  # where the model holds it ("" for a root)
    shapes: Annotated[list[Annotated[list[Dim], Field(max_length=32)]], Field(max_length=16)]


class ModelState(Strict):
    """The model as the harness found it: the outermost modules' class names and their state leaves."""

    roots: Annotated[list[Annotated[str, Field(pattern=IDENT)]], Field(max_length=MAX_ROOTS)] = []
    variables: Annotated[list[StateEntry], Field(max_length=MAX_VARIABLES)] = []
    truncated: StrictBool = False
    # The roots are traced copies: nothing concrete was built (the function ran under a transform as a whole).
    traced: StrictBool = False
    # How many nnx.Dropout layers (or subclasses) the model holds: a layer without state, which `variables`
    # cannot show (its RNG stream is left out of them).
    dropout_layers: Index = 0
    # The modules holding parameters of their own, in the order they were built (each draws its keys from the
    # Rngs as it is built, so the order decides the initial values); empty when the model was not recorded.
    layers: Annotated[list[Layer], Field(max_length=MAX_ROOTS)] = []
    # With no NNX module built: the Flax Linen module classes the program defines (the other Flax API).
    linen: Annotated[list[Annotated[str, Field(pattern=IDENT)]], Field(max_length=8)] = []
    error: ErrorText | None = None


class GradientEntry(Strict):
    """One gradient: of a Param (by its state path) or of an array argument (by its name)."""

    path: Annotated[str, Field(pattern=PATH)]
    type: Annotated[str, Field(pattern=IDENT)] = "Array"
    shape: Annotated[list[Dim], Field(max_length=32)]
    value: Index


class Gradients(Strict):
    entries: Annotated[list[GradientEntry], Field(max_length=MAX_VARIABLES)] = []
    error: ErrorText | None = None


class Retrace(Strict):
    traces: Annotated[StrictInt, Field(ge=0, le=10**7)]


class RowOutput(Strict):
    row: Index
    tree: dict[str, Any]


class BatchRows(Strict):
    batch: Dim = 0
    rows: Annotated[list[RowOutput], Field(max_length=MAX_ROWS)] = []
    error: ErrorText | None = None


class EvalRepeat(Strict):
    first: dict[str, Any] | None = None
    second: dict[str, Any] | None = None
    error: ErrorText | None = None


class Probes(Strict):
    state: ModelState | None = None
    gradients: Gradients | None = None
    retrace: Retrace | None = None
    batch_invariance: BatchRows | None = None
    eval_determinism: EvalRepeat | None = None
    duration_ms: Annotated[float, Field(ge=0, le=1e9)] | None = None  # time the probes took in the child
    cpu_ms: Annotated[float, Field(ge=0, le=1e9)] | None = None  # CPU time they took (all the child's threads)


class ProbeError(Exception):
    """The child's probes do not follow the schema: the submission wrote to the result channel."""


def valid_tree(tree: Any, n_arrays: int, depth: int = 0, budget: list[int] | None = None) -> bool:
    """An output tree as the harness writes it (leaf / tuple / list / dict), with leaf indices in range."""
    budget = budget if budget is not None else [MAX_TREE_NODES]
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_TREE_DEPTH or not isinstance(tree, dict):
        return False
    kind = tree.get("t")
    if kind == "leaf":
        index, carried = tree.get("i"), tree.get("d")
        return (set(tree) <= {"t", "i", "d"} and type(index) is int and 0 <= index < n_arrays
                and (carried is None or isinstance(carried, str)))
    children = tree.get("c")
    if not isinstance(children, list) or not all(valid_tree(c, n_arrays, depth + 1, budget) for c in children):
        return False
    if kind in ("tuple", "list"):
        return set(tree) == {"t", "c"}
    if kind == "dict":
        keys = tree.get("k")
        return (set(tree) == {"t", "k", "c"} and isinstance(keys, list) and len(keys) == len(children)
                and all(isinstance(k, str) and len(k) <= 200 for k in keys) and len(set(keys)) == len(keys))
    return False


def parse_probes(raw: Any, n_arrays: int, first_probe_array: int) -> Probes:
    """Validate a child's `probes` object; every array index must point past the outputs' own arrays."""
    try:
        probes = Probes.model_validate(raw)
    except ValidationError as exc:
        raise ProbeError(f"malformed model description ({exc.error_count()} problems)") from exc
    check_probe_arrays(probes, first=first_probe_array, count=n_arrays)
    return probes


def check_probe_arrays(probes: Probes, *, first: int, count: int) -> None:
    """Every array a description points at lies in [first, count), and its trees are well formed."""
    indices: list[int] = []
    trees: list[dict[str, Any]] = []
    if probes.state is not None:
        indices += [v.value for v in probes.state.variables if v.value is not None]
    if probes.gradients is not None:
        indices += [g.value for g in probes.gradients.entries]
    if probes.batch_invariance is not None:
        trees += [r.tree for r in probes.batch_invariance.rows]
    if probes.eval_determinism is not None:
        trees += [t for t in (probes.eval_determinism.first, probes.eval_determinism.second) if t is not None]
    if any(not first <= i < count for i in indices):
        raise ProbeError("a model description points at an array that was not sent")
    if not all(valid_tree(t, count) for t in trees):
        raise ProbeError("a check's result is not a well-formed output tree")
