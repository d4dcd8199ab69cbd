"""How a public test's wrong values relate to the expected ones (graders/value_relations.py), and that the
comparison says so on public tests only."""

from __future__ import annotations

import numpy as np
import pytest

from graders.compare import Output, compare
from graders.problem import Tolerance
from graders.value_relations import describe_relation

TOL = Tolerance(rtol=1e-5, atol=1e-6)
RNG = np.random.default_rng(0)
WANT = RNG.normal(size=(2, 3, 4)).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize(("got", "want", "says"), [
    (WANT * 2, WANT, "every value is 2 times the expected one"),
    (WANT / np.sqrt(8), WANT, "every value is 0.3536 times the expected one (0.3536 = 1/√8)"),
    (WANT * np.sqrt(2), WANT, "(1.414 = √2)"),
    (WANT * 0.5, WANT, "(0.5 = 1/2)"),
    (-WANT, WANT, "every value has the opposite sign of the expected one"),
    (WANT + 0.1, WANT, "every value is the expected one plus 0.1"),
    (WANT - 2.5, WANT, "every value is the expected one minus 2.5"),
    (WANT, np.maximum(WANT, 0), "a ReLU (max(·, 0)) at the end is missing"),
    (np.maximum(WANT, 0), WANT, "a ReLU (max(·, 0)) is applied that should not be"),
    (_softmax(WANT), WANT, "the softmax of the expected ones over the last axis"),
    (np.log(_softmax(WANT)), WANT, "the log-softmax of the expected ones"),
    (WANT[:, ::-1], WANT, "reversed along axis 1"),
    (np.zeros_like(WANT), WANT, "every value of yours is 0"),
    (WANT.reshape(2, 4, 3).transpose(0, 2, 1), WANT, "the expected ones in another order"),
    (np.array([3.0, 2.0, 1.5, 1.2, 1.1]), np.array([4.0, 3.0, 2.0, 1.5, 1.2]),
     "shifted by one place (yours[i] = expected[i + 1]): an off-by-one, such as a value recorded after an update"),
    (np.array([5.0, 4.0, 3.0, 2.0, 1.5]), np.array([4.0, 3.0, 2.0, 1.5, 1.2]), "(yours[i] = expected[i - 1])"),
    (np.array([3.40538]), np.array([11.5966]), "your values are the square roots of the expected ones"),
    (np.abs(WANT), WANT * WANT, "your values are the square roots of the expected ones"),
    (WANT * WANT, np.abs(WANT), "your values are the squares of the expected ones"),
    (WANT + RNG.normal(size=WANT.shape).astype(np.float32) * 1e-3, WANT, "% of the expected values' size, beyond "
     "the tolerance only"),
])
def test_a_relation_that_holds_for_every_value_is_named(got: np.ndarray, want: np.ndarray, says: str) -> None:
    relation = describe_relation(np.asarray(got, np.float32), want, TOL)
    assert relation is not None and says in relation, relation


def test_swapped_axes_are_named_by_the_order_that_matches() -> None:
    square = RNG.normal(size=(3, 3))
    relation = describe_relation(square.T, square, TOL)
    assert relation is not None and "transposed by (1, 0) they match" in relation, relation


@pytest.mark.parametrize(("got", "want"), [
    (RNG.normal(size=(2, 3, 4)), WANT),  # unrelated numbers
    (WANT * 2 + RNG.normal(size=WANT.shape) * 1e-1, WANT),  # almost a scale, not within tolerance
    (WANT + np.linspace(0, 1, WANT.size).reshape(WANT.shape), WANT),  # an offset that varies
    (np.array([2.0, 0.0, 2.0, 0.0, 0.0, 2.0]), np.array([0.0, 2.0, 2.0, 0.0, 2.0, 0.0])),  # another dropout mask
    (np.array([3.0]), np.array([1.5])),  # one value: any factor "explains" it
    (np.array([0.0, 0.0, 1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0, 0.0, 0.0])),  # 0 and 1 are their own squares
    (np.array([1.0, 1.0, 1.0, 5.0]), np.array([1.0, 1.0, 1.0, 1.0])),  # a constant run matches shifted and not
    (np.array([1.0, np.nan]), np.array([1.0, 2.0])),  # not finite: the finite stage speaks
])
def test_no_relation_is_claimed_where_none_explains_every_value(got: np.ndarray, want: np.ndarray) -> None:
    assert describe_relation(np.asarray(got), np.asarray(want), TOL) is None


def _output(arr: np.ndarray) -> Output:
    return Output({"t": "leaf", "i": 0}, (arr,))


def test_a_public_failure_says_the_relation_and_a_hidden_one_does_not() -> None:
    got, want = _output(WANT * 2), _output(WANT)
    public = compare(got, want, TOL, public=True)
    assert not public.ok and public.stage == "values"
    assert public.message is not None and public.message.endswith("; every value is 2 times the expected one")
    hidden = compare(got, want, TOL, public=False)
    assert hidden.message == "the output has the right shape but wrong values (hidden test)"
