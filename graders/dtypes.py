"""Dtypes as the dtype stage sees them: a kind (bool, integer, float) and a precision, and the policy.

Both sides use it: the harness names the dtypes numpy cannot carry (a bfloat16 leaf travels as float32
with its name beside it), and the trusted parent judges a returned dtype against the reference's under
the problem's `dtype` policy:

- `exact`: the same dtype;
- `same_kind` (the default): the same kind, and a float at least as precise as the reference's. A
  float64 or int64 answer passes (numpy and Python numbers default to them), a bfloat16 or float16 answer
  to a float32 reference does not: its values are rounded to 3-4 significant digits;
- `any`: no dtype stage (values are still compared).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

# Which ml_dtypes a leaf may travel as float32 beside: part of the wire format, which the child uses too.
from graders.wire import EXTENDED

DtypePolicy = Literal["exact", "same_kind", "any"]

KIND_NAMES = {"b": "a bool", "i": "an integer", "u": "an integer", "f": "a float", "c": "a complex"}


def kind_and_bits(name: str) -> tuple[str, int] | None:
    """(kind letter, significand bits for floats else 0) of a dtype name, or None for an unknown name."""
    if name in EXTENDED:
        return EXTENDED[name]
    try:
        dt = np.dtype(name)
    except TypeError:
        return None
    if dt.kind == "f":
        return "f", int(np.finfo(dt).nmant) + 1
    if dt.kind in "biuc":
        return dt.kind, 0
    return None


def _family(kind: str) -> str:
    return "i" if kind == "u" else kind


def policy_problem(got: str, want: str, policy: DtypePolicy) -> str | None:
    """Why `got` fails against the reference's `want` under `policy` (a clause), or None when it passes."""
    if policy == "any" or got == want:
        return None
    if policy == "exact":
        return f"has dtype {got}, expected {want}"
    g, w = kind_and_bits(got), kind_and_bits(want)
    if g is None or w is None:
        return None if g == w else f"has dtype {got}, expected {want}"
    if _family(g[0]) != _family(w[0]):
        return f"has dtype {got}, expected {want}: {KIND_NAMES[g[0]]} where {KIND_NAMES[w[0]]} is expected"
    if g[0] == "f" and g[1] < w[1]:
        return (f"has dtype {got}, expected {want}: {got} keeps about {_digits(g[1])} significant digits where "
                f"{want} keeps {_digits(w[1])}; compute in {want} (no `.astype(jnp.{got})`, no `dtype=jnp.{got}` "
                "layers)")
    return None


def _digits(bits: int) -> int:
    return max(1, round(bits * 0.30103))  # log10(2) per significand bit
