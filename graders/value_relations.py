"""How a public test's wrong values relate to the expected ones, when one simple relation explains all of them.

"24 of 24 values differ; worst: expected -0.9455, got -0.3343" says that the output is wrong; "every value is
0.3536 times the expected one (0.3536 = 1/√8)" says what to look for: a division by sqrt(8). The relations are
the shapes the common mistakes leave in an output: a constant factor (a scale such as sqrt(d) or 1 - rate, or
the sign), a constant offset (a bias initialized to another constant), a ReLU missing or added, a softmax applied
to what should stay logits, the right numbers in another order (axes swapped, a sequence reversed) or shifted by
one place (a loss recorded after the update), their square roots or squares (a norm for a sum of squares: said of
a single number too), and values all within 1 % (a constant or an approximation differs).

A relation is claimed only when it holds for every element within the problem's tolerance (widened tenfold for
the rounding of the other computation), and only for a public test: the expected values of a hidden test are not
the student's to learn about. Runs in the trusted parent on the two arrays the comparison already has.
"""

from __future__ import annotations

import itertools

import numpy as np

from graders.problem import Tolerance

# The work is a few passes over the output (a sort, and up to 5! axis orders when the sorted values match): the
# parent does it for each failed public test, so it is bounded; a public example this large is rare.
MAX_ELEMENTS = 100_000
MAX_PERMUTED_AXES = 5
# Rounding of a scaled or shifted computation (x * sqrt(d) then a matmul): a relation's slack over the tolerance.
SLACK = 10.0
# Off by at most this fraction of the expected values' largest magnitude: "nearly", a constant differs.
NEARLY = 0.01


def _close(a: np.ndarray, b: np.ndarray, tol: Tolerance) -> bool:
    atol, rtol = tol.atol * SLACK, max(tol.rtol * SLACK, 1e-6)
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _number(c: float) -> str:
    return f"{c:.4g}"


def _named_constant(c: float) -> str:
    """A factor (> 0) as the constant it probably is: 0.3536 = 1/√8, 1.414 = √2, 0.25 = 1/4 (a width, a divisor).
    A whole number speaks for itself."""
    if abs(c - round(c)) <= 1e-6 * c:
        return ""
    for value, form in ((1 / c, "1/{n}"), (c * c, "√{n}"), (1 / (c * c), "1/√{n}")):
        n = round(value)
        if 2 <= n <= 65536 and abs(value - n) <= 1e-4 * n:
            return f" ({_number(c)} = {form.format(n=n)})"
    return ""


def _scale(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    norm = float(np.dot(w, w))
    if norm == 0.0 or np.count_nonzero(w) < 2:
        return None
    c = float(np.dot(g, w) / norm)
    if abs(c - 1.0) < 1e-3 or c == 0.0 or not _close(g, c * w, tol):
        return None
    if abs(c + 1.0) < 1e-3:
        return "every value has the opposite sign of the expected one"
    named = _named_constant(abs(c)) if c > 0 else ""
    return f"every value is {_number(c)} times the expected one{named}"


def _offset(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    d = float(np.median(g - w))
    if abs(d) <= tol.atol * SLACK or not _close(g, w + d, tol):
        return None
    return f"every value is the expected one {'plus' if d > 0 else 'minus'} {_number(abs(d))}"


def _relu(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    if np.any(g < -tol.atol * SLACK) and _close(np.maximum(g, 0.0), w, tol):
        return ("your values match the expected ones wherever those are positive, and are negative where the expected "
                "ones are 0: a ReLU (max(·, 0)) at the end is missing")
    if np.any(w < -tol.atol * SLACK) and _close(g, np.maximum(w, 0.0), tol):
        return ("your values are the expected ones with the negative ones set to 0: a ReLU (max(·, 0)) is applied that "
                "should not be")
    return None


def _softmax(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    if g.ndim == 0 or g.shape[-1] < 2:
        return None
    shifted = w - np.max(w, axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    if _close(g, np.exp(log_softmax), tol):
        return ("your values are the softmax of the expected ones over the last axis: return the raw scores (logits); "
                "the loss applies the softmax")
    if _close(g, log_softmax, tol):
        return ("your values are the log-softmax of the expected ones over the last axis: return the raw scores "
                "(logits); the loss normalizes them")
    return None


def _reordered(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    if not _close(np.sort(g, axis=None), np.sort(w, axis=None), tol):
        return None
    if 1 < g.ndim <= MAX_PERMUTED_AXES:
        for order in itertools.permutations(range(g.ndim)):
            if order != tuple(range(g.ndim)) and g.transpose(order).shape == w.shape \
                    and _close(g.transpose(order), w, tol):
                return (f"your values are the expected ones with the axes in another order: transposed by {order} "
                        "they match (an axis mix-up in a transpose, reshape or einsum)")
    for axis in range(g.ndim):
        if g.shape[axis] > 1 and _close(np.flip(g, axis=axis), w, tol):
            return f"your values are the expected ones reversed along axis {axis}"
    # Few distinct values (dropout masks, counts, ReLU zeros): the same values in another order say little.
    if np.unique(np.round(w, 6)).size < max(2, (w.size + 1) // 2):
        return None
    return ("your values are the expected ones in another order: a reshape or transpose mixes up the positions "
            "(which axis is which)")


def _shifted(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    """The expected values one place further along an axis (losses recorded after the update instead of before):
    claimed only where the overlap matches shifted and does not unshifted (a constant run matches both ways)."""
    for axis in range(g.ndim):
        if g.shape[axis] < 3:
            continue
        n = g.shape[axis]
        head, tail = (slice(None),) * axis + (slice(0, n - 1),), (slice(None),) * axis + (slice(1, n),)
        for mine, theirs, says in ((head, tail, "yours[i] = expected[i + 1]"),
                                   (tail, head, "yours[i] = expected[i - 1]")):
            if _close(g[mine], w[theirs], tol) and not _close(g[mine], w[mine], tol):
                where = f" along axis {axis}" if g.ndim > 1 else ""
                return (f"your values are the expected ones shifted by one place{where} ({says}): an off-by-one, "
                        "such as a value recorded after an update instead of before, or one step too many or too few")
    return None


def _power(g: np.ndarray, w: np.ndarray, tol: Tolerance) -> str | None:
    """The square root or the square of the expected values: specific enough to say of a single number too (a
    norm for a sum of squares), except where the expected values are all 0 and 1 (their own squares)."""
    if np.all((np.abs(w) < 1e-12) | (np.abs(w - 1.0) < 1e-12)):
        return None
    if np.all(w >= 0) and np.all(g >= 0) and _close(g * g, w, tol):
        return ("your values are the square roots of the expected ones: a norm or a standard deviation where its "
                "square (a sum of squares, a variance) is asked")
    if np.all(g >= 0) and _close(g, w * w, tol):
        return ("your values are the squares of the expected ones: a sum of squares or a variance where its square "
                "root (a norm, a standard deviation) is asked")
    return None


def _nearly(g: np.ndarray, w: np.ndarray) -> str | None:
    """Every value within 1 % of the expected values' size: most likely one constant or approximation differs."""
    size = float(np.max(np.abs(w)))
    worst = float(np.max(np.abs(g - w)))
    if size == 0.0 or worst > NEARLY * size:
        return None
    return (f"every value is within {100 * worst / size:.2g} % of the expected values' size, beyond the tolerance "
            "only: look for a small difference, a constant or an approximation (an epsilon, a momentum, gelu's tanh "
            "approximation against the exact erf, a divisor such as n - 1, float64 against float32)")


def describe_relation(got: np.ndarray, want: np.ndarray, tol: Tolerance) -> str | None:
    """One sentence on how `got` relates to `want` (same shape, some values beyond tolerance), or None."""
    if got.shape != want.shape or got.size == 0 or got.size > MAX_ELEMENTS:
        return None
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(w))):
        return None
    if got.size == 1:  # one number: any factor or offset "explains" it; a square or a root is a real clue
        return _power(g, w, tol)
    if not np.any(g) and np.any(w):
        return "every value of yours is 0"
    flat_g, flat_w = g.ravel(), w.ravel()
    return (_scale(flat_g, flat_w, tol) or _offset(g, w, tol) or _relu(g, w, tol) or _softmax(g, w, tol)
            or _reordered(g, w, tol) or _shifted(g, w, tol) or _power(g, w, tol) or _nearly(g, w))
