"""Staged comparison of a submission's outputs with the reference, in the trusted parent process.

Stages, each with its own message, so a student learns from the first that fails:
present -> structure (pytree) -> shape (exact, no broadcasting) -> dtype (the problem's policy) -> finite
-> values within tolerance. Hidden tests report the stage only, never inputs, expected values or error
sizes (`HIDDEN_MESSAGES`). The model's stages (state, transform checks) follow in `graders/model_checks.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from graders import dtypes
from graders.dtypes import DtypePolicy
from graders.problem import Tolerance
from graders.value_relations import describe_relation

PREVIEW_ELEMENTS = 12


@dataclass(frozen=True)
class Output:
    """A returned value as it crossed the pipe: a JSON tree description and plain numeric leaves."""

    tree: dict[str, Any]
    leaves: tuple[np.ndarray, ...]


def declared_dtype(node: dict[str, Any], arr: np.ndarray) -> str:
    """The dtype a leaf had where it was returned: the carried name for bfloat16 and friends (only names
    numpy cannot carry, and only on a float32 leaf), else the array's own."""
    name = node.get("d")
    if isinstance(name, str) and name in dtypes.EXTENDED and arr.dtype == np.float32:
        return name
    return arr.dtype.name


@dataclass
class Comparison:
    ok: bool
    stage: str
    message: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    mismatched: int | None = None
    elements: int | None = None
    worst_index: list[int] | None = None
    expected: str | None = None
    got: str | None = None


def _describe(tree: dict[str, Any], leaves: tuple[np.ndarray, ...]) -> str:
    kind = tree.get("t")
    if kind == "leaf":
        arr = leaves[tree["i"]]
        return "a scalar" if arr.ndim == 0 else f"an array of shape {tuple(arr.shape)}"
    if kind in ("tuple", "list"):
        return f"a {kind} of {len(tree['c'])}"
    if kind == "dict":
        return f"a dict with keys {sorted(tree['k'])}"
    return "an unknown value"


def preview(arr: np.ndarray) -> str:
    return np.array2string(
        np.asarray(arr), precision=6, threshold=PREVIEW_ELEMENTS, edgeitems=3, suppress_small=False,
        max_line_width=100,
    )


def _path_name(path: str) -> str:
    return f"the output{path}" if path else "the output"


Pair = tuple[str, np.ndarray, np.ndarray, str, str]  # path, got, want, got's dtype, want's dtype


def _structure(got: Output, want: Output, g: dict[str, Any], w: dict[str, Any], path: str,
               pairs: list[Pair]) -> str | None:
    """Walk both trees; collect leaf pairs; return the first structural mismatch, if any."""
    wk, gk = w.get("t"), g.get("t")
    if wk == "leaf":
        if gk != "leaf":
            return f"{_path_name(path)} should be a single array, got {_describe(g, got.leaves)}"
        g_arr, w_arr = got.leaves[g["i"]], want.leaves[w["i"]]
        pairs.append((path, g_arr, w_arr, declared_dtype(g, g_arr), declared_dtype(w, w_arr)))
        return None
    if wk in ("tuple", "list"):
        # A list where a tuple is expected (or the reverse) is the same answer.
        if gk not in ("tuple", "list"):
            return (f"{_path_name(path)} should be a {wk} of {len(w['c'])} values, "
                    f"got {_describe(g, got.leaves)}")
        if len(g["c"]) != len(w["c"]):
            return f"{_path_name(path)} should have {len(w['c'])} elements, got {len(g['c'])}"
        for i, (gc, wc) in enumerate(zip(g["c"], w["c"], strict=True)):
            err = _structure(got, want, gc, wc, f"{path}[{i}]", pairs)
            if err:
                return err
        return None
    if wk == "dict":
        if gk != "dict":
            return f"{_path_name(path)} should be a dict with keys {sorted(w['k'])}, got {_describe(g, got.leaves)}"
        if sorted(g["k"]) != sorted(w["k"]):
            return f"{_path_name(path)} should have keys {sorted(w['k'])}, got {sorted(g['k'])}"
        gmap = dict(zip(g["k"], g["c"], strict=True))
        for key, wc in zip(w["k"], w["c"], strict=True):
            err = _structure(got, want, gmap[key], wc, f"{path}[{key!r}]", pairs)
            if err:
                return err
        return None
    return f"{_path_name(path)} has an unexpected structure"


def _shape(path: str, got: np.ndarray, want: np.ndarray) -> Comparison | None:
    if got.shape == want.shape:
        return None
    got_desc = "a scalar" if got.ndim == 0 else f"shape {tuple(got.shape)}"
    want_desc = "a scalar" if want.ndim == 0 else f"shape {tuple(want.shape)}"
    return Comparison(False, "shape", f"{_path_name(path)} has the wrong shape: expected {want_desc}, got {got_desc}")


def _dtype(path: str, got_dtype: str, want_dtype: str, policy: DtypePolicy) -> Comparison | None:
    problem = dtypes.policy_problem(got_dtype, want_dtype, policy)
    if problem is None:
        return None
    return Comparison(False, "dtype", f"{_path_name(path)} {problem}")


def _values(path: str, got: np.ndarray, want: np.ndarray, tol: Tolerance, public: bool) -> Comparison | None:
    name = _path_name(path)
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    g_bad = ~np.isfinite(g)
    w_bad = ~np.isfinite(w)
    if tol.nan_policy == "reject" and np.any(g_bad & ~w_bad):
        idx = np.argwhere(g_bad & ~w_bad)[0]
        what = "NaN" if np.isnan(g[tuple(idx)]) else "Inf"
        where = f" at index {tuple(int(i) for i in idx)}" if g.ndim else ""
        count = int(np.sum(g_bad & ~w_bad))
        return Comparison(False, "finite", f"{name} contains {what}{where} ({count} non-finite values) "
                          "where the expected values are finite")
    # Non-finite values match only the same non-finite value (NaN with NaN, +Inf with +Inf).
    both_nan = np.isnan(g) & np.isnan(w)
    same_inf = np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(g - w)
        allowed = tol.atol + tol.rtol * np.abs(w)
        ok = (np.isfinite(g) & np.isfinite(w) & (diff <= allowed)) | both_nan | same_inf
    if np.all(ok):
        return None
    finite = np.isfinite(diff)
    diff_f = np.where(finite, diff, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(np.abs(w) > 0, diff_f / np.abs(w), np.where(diff_f > 0, np.inf, 0.0))
    excess = np.where(ok, -np.inf, np.where(finite, diff_f - allowed, np.inf))
    worst = np.unravel_index(int(np.argmax(excess)), g.shape) if g.ndim else ()
    mismatched = int(np.sum(~ok))
    max_abs = float(np.max(np.where(ok, 0.0, np.where(finite, diff_f, np.inf))))
    max_rel = float(np.max(np.where(ok, 0.0, rel)))
    if not public:
        return Comparison(False, "values", f"{name} has the right shape but wrong values (hidden test)")
    where = f" at index {tuple(int(i) for i in worst)}" if g.ndim else ""
    message = (
        f"{name}: {mismatched} of {g.size} values differ beyond tolerance "
        f"(rtol={tol.rtol:g}, atol={tol.atol:g}); worst{where}: expected {w[worst]:.6g}, got {g[worst]:.6g}"
    )
    relation = describe_relation(got, want, tol)
    if relation is not None:
        message += f"; {relation}"
    return Comparison(
        False, "values", message, max_abs_error=max_abs, max_rel_error=max_rel, mismatched=mismatched,
        elements=int(g.size), worst_index=[int(i) for i in worst], expected=preview(want), got=preview(got),
    )


HIDDEN_MESSAGES = {
    "structure": "the output has the wrong structure (hidden test)",
    "shape": "the output has the wrong shape (hidden test)",
    "finite": "the output contains NaN or Inf (hidden test)",
}


def _stage_only(failure: Comparison) -> Comparison:
    """A hidden test's failure says which stage failed and nothing about what was expected (no expected
    shape, keys or values: the public tests show those). A dtype clause stays: it is the problem's, the
    same on every test, and reveals no input."""
    message = HIDDEN_MESSAGES.get(failure.stage)
    return Comparison(False, failure.stage, message) if message is not None else failure


def compare(got: Output, want: Output, tol: Tolerance, *, public: bool,
            dtype: DtypePolicy = "same_kind") -> Comparison:
    result = _compare(got, want, tol, public=public, dtype=dtype)
    return result if public or result.ok else _stage_only(result)


def _compare(got: Output, want: Output, tol: Tolerance, *, public: bool, dtype: DtypePolicy) -> Comparison:
    pairs: list[Pair] = []
    err = _structure(got, want, got.tree, want.tree, "", pairs)
    if err:
        return Comparison(False, "structure", err)
    # Stage by stage over every leaf, so the first failing stage is reported whichever leaf shows it.
    for path, g, w, _, _ in pairs:
        failure = _shape(path, g, w)
        if failure is not None:
            if public:
                failure.expected, failure.got = preview(w), preview(g)
            return failure
    for path, _, _, g_dtype, w_dtype in pairs:
        failure = _dtype(path, g_dtype, w_dtype, dtype)
        if failure is not None:
            return failure
    worst_abs = 0.0
    worst_rel = 0.0
    for path, g, w, _, _ in pairs:
        failure = _values(path, g, w, tol, public)
        if failure is not None:
            if public and failure.stage == "finite":
                failure.expected, failure.got = preview(w), preview(g)
            return failure
        if g.size:
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            finite = np.isfinite(g64) & np.isfinite(w64)
            d = np.abs(g64[finite] - w64[finite])
            if d.size:
                worst_abs = max(worst_abs, float(d.max()))
                denom = np.abs(w64[finite])
                with np.errstate(divide="ignore", invalid="ignore"):
                    r = np.where(denom > 0, d / denom, 0.0)
                worst_rel = max(worst_rel, float(r.max()))
    if not public:
        return Comparison(True, "values", "passed")
    return Comparison(True, "values", "passed", max_abs_error=worst_abs, max_rel_error=worst_rel)


def leaf_pairs(got: Output, want: Output) -> list[Pair] | None:
    """The (path, got, want, got dtype, want dtype) leaves of two outputs of the same structure, else None."""
    pairs: list[Pair] = []
    if _structure(got, want, got.tree, want.tree, "", pairs):
        return None
    return pairs


def values_close(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> bool:
    """Same shape and every value within tolerance (non-finite values only match themselves)."""
    return got.shape == want.shape and _values("", got, want, tol, public=False) is None


def outputs_match(a: Output, b: Output, tol: Tolerance) -> bool:
    """Whether two outputs agree within tolerance (used to recognise known mistakes): values, any dtype."""
    return compare(a, b, tol, public=False, dtype="any").ok
