"""Staged comparison: each stage fails with its own message; hidden tests reveal nothing."""

from __future__ import annotations

import numpy as np
import pytest

from graders.compare import Output, compare, outputs_match
from graders.problem import Tolerance

TOL = Tolerance()


def leaf(arr: object) -> Output:
    return Output({"t": "leaf", "i": 0}, (np.asarray(arr),))


def pair(a: object, b: object, kind: str = "tuple") -> Output:
    return Output({"t": kind, "c": [{"t": "leaf", "i": 0}, {"t": "leaf", "i": 1}]}, (np.asarray(a), np.asarray(b)))


def test_equal_within_tolerance_passes() -> None:
    want = leaf(np.array([1.0, 2.0], np.float32))
    got = leaf(np.array([1.0 + 5e-6, 2.0], np.float32))
    assert compare(got, want, TOL, public=True).ok


def test_value_failure_reports_errors_and_worst_index_on_public_tests() -> None:
    want = leaf(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    got = leaf(np.array([[1.0, 2.0], [3.0, 5.0]], np.float32))
    cmp = compare(got, want, TOL, public=True)
    assert not cmp.ok and cmp.stage == "values"
    assert cmp.mismatched == 1 and cmp.elements == 4 and cmp.worst_index == [1, 1]
    assert cmp.max_abs_error == 1.0 and cmp.max_rel_error == 0.25
    assert "expected 4, got 5" in cmp.message and "(1, 1)" in cmp.message
    assert cmp.expected is not None and "4." in cmp.expected and cmp.got is not None and "5." in cmp.got


def test_hidden_failure_reveals_only_the_kind() -> None:
    cmp = compare(leaf([1.0, 9.0]), leaf([1.0, 2.0]), TOL, public=False)
    assert not cmp.ok and cmp.stage == "values"
    assert cmp.expected is None and cmp.got is None and cmp.max_abs_error is None
    assert "9" not in cmp.message and "2" not in cmp.message


@pytest.mark.parametrize(("got", "want", "stage"), [
    (leaf(np.zeros(3)), leaf(np.zeros(16)), "shape"),
    (leaf(np.zeros((1, 4))), leaf(np.zeros(4)), "shape"),
    (leaf([1.0, 2.0]), pair(1.0, 2.0), "structure"),
    (Output({"t": "dict", "k": ["a"], "c": [{"t": "leaf", "i": 0}]}, (np.ones(1),)),
     Output({"t": "dict", "k": ["secret_key"], "c": [{"t": "leaf", "i": 0}]}, (np.ones(1),)), "structure"),
    (leaf([np.nan, 7.5]), leaf([1.25, 7.5]), "finite"),
])
def test_hidden_failures_name_the_stage_only(got: Output, want: Output, stage: str) -> None:
    """No expected shape ("expected shape (16,), got shape (3,)" leaked it), keys, index or value."""
    public = compare(got, want, TOL, public=True)
    hidden = compare(got, want, TOL, public=False)
    assert public.stage == hidden.stage == stage and not hidden.ok
    assert hidden.message.endswith("(hidden test)") and stage in hidden.message.replace("NaN or Inf", "finite")
    for leak in ("16", "4", "secret_key", "1.25", "index", "expected"):
        assert leak not in hidden.message, hidden.message
    assert hidden.expected is None and hidden.got is None and hidden.worst_index is None


def test_shape_must_match_exactly_no_broadcasting() -> None:
    cmp = compare(leaf(2.0), leaf([2.0, 2.0]), TOL, public=True)
    assert not cmp.ok and cmp.stage == "shape"
    assert "expected shape (2,), got a scalar" in cmp.message
    assert not compare(leaf([[1.0, 2.0]]), leaf([1.0, 2.0]), TOL, public=True).ok


def test_nan_and_inf_fail_where_reference_is_finite() -> None:
    cmp = compare(leaf([1.0, np.nan]), leaf([1.0, 2.0]), TOL, public=True)
    assert not cmp.ok and cmp.stage == "finite" and "NaN at index (1,)" in cmp.message
    assert compare(leaf([np.inf]), leaf([1.0]), TOL, public=True).stage == "finite"
    # NaN matches NaN only under the "equal" policy.
    assert compare(leaf([np.nan]), leaf([np.nan]), Tolerance(nan_policy="equal"), public=True).ok
    assert compare(leaf([np.inf]), leaf([np.inf]), TOL, public=True).ok
    assert not compare(leaf([-np.inf]), leaf([np.inf]), Tolerance(nan_policy="equal"), public=True).ok


def test_structure_stage() -> None:
    assert compare(pair(1.0, 2.0, "list"), pair(1.0, 2.0, "tuple"), TOL, public=True).ok
    cmp = compare(leaf([1.0, 2.0]), pair(1.0, 2.0), TOL, public=True)
    assert cmp.stage == "structure" and "should be a tuple of 2 values" in cmp.message
    three = Output({"t": "tuple", "c": [{"t": "leaf", "i": i} for i in range(3)]}, tuple(np.ones(1) for _ in range(3)))
    assert "should have 2 elements, got 3" in compare(three, pair(1.0, 1.0), TOL, public=True).message
    d1 = Output({"t": "dict", "k": ["a"], "c": [{"t": "leaf", "i": 0}]}, (np.ones(1),))
    d2 = Output({"t": "dict", "k": ["b"], "c": [{"t": "leaf", "i": 0}]}, (np.ones(1),))
    assert "should have keys ['b']" in compare(d1, d2, TOL, public=True).message


def test_nested_path_is_named() -> None:
    cmp = compare(pair([1.0], [3.0]), pair([1.0], [2.0]), TOL, public=True)
    assert cmp.message.startswith("the output[1]")


def test_integer_and_bool_outputs_compare_numerically() -> None:
    assert compare(leaf(np.uint32(3)), leaf(3), TOL, public=True).ok
    assert outputs_match(leaf(np.array([True, False])), leaf(np.array([1, 0])), TOL)


def carried(arr: object, name: str) -> Output:
    """A leaf the harness sent as float32 with its own dtype's name beside it (bfloat16 and friends)."""
    return Output({"t": "leaf", "i": 0, "d": name}, (np.asarray(arr, np.float32),))


def test_dtype_stage_names_a_lower_precision_float() -> None:
    want = leaf(np.array([-3.11869, 1.0], np.float32))
    got = carried([-3.125, 1.0], "bfloat16")
    cmp = compare(got, want, TOL, public=True)
    assert not cmp.ok and cmp.stage == "dtype"
    assert cmp.message.startswith("the output has dtype bfloat16, expected float32")
    # The same message on a hidden test: a dtype reveals neither inputs nor expected values.
    assert compare(got, want, TOL, public=False).message == cmp.message
    half = leaf(np.array([1.0], np.float16))
    assert compare(half, leaf(np.array([1.0], np.float32)), TOL, public=True).stage == "dtype"


def test_dtype_policy_same_kind_allows_wider_types_and_refuses_other_kinds() -> None:
    f32 = leaf(np.array([1.0, 2.0], np.float32))
    assert compare(leaf(np.array([1.0, 2.0], np.float64)), f32, TOL, public=True).ok
    u32 = leaf(np.array(3, np.uint32))
    assert compare(leaf(np.array(3, np.int64)), u32, TOL, public=True).ok
    cmp = compare(leaf(np.array(3.0, np.float32)), u32, TOL, public=True)
    assert cmp.stage == "dtype" and "a float where an integer is expected" in cmp.message
    assert compare(leaf(np.array([True])), leaf(np.array([1], np.int32)), TOL, public=True).stage == "dtype"


def test_dtype_policy_exact_and_any() -> None:
    f32 = leaf(np.array([1.0], np.float32))
    f64 = leaf(np.array([1.0], np.float64))
    assert compare(f64, f32, TOL, public=True, dtype="exact").stage == "dtype"
    assert compare(f32, f32, TOL, public=True, dtype="exact").ok
    # "any" skips the stage: a bfloat16 answer is judged on its values alone.
    cmp = compare(carried([-3.125], "bfloat16"), leaf(np.array([-3.11869], np.float32)), TOL, public=True, dtype="any")
    assert cmp.stage == "values"


def test_carried_dtype_name_is_believed_only_for_known_names_on_float32_leaves() -> None:
    want = leaf(np.array([1.0], np.float32))
    # A name that is not an ml_dtypes name, or beside a leaf that is not float32, is ignored.
    assert compare(carried([1.0], "float32; rm -rf /"), want, TOL, public=True).ok
    forged = Output({"t": "leaf", "i": 0, "d": "bfloat16"}, (np.array([1.0], np.float64),))
    assert compare(forged, want, TOL, public=True).ok


def test_shape_stage_comes_before_dtype_and_values_for_every_leaf() -> None:
    want = pair(np.array([1.0], np.float32), np.array([1.0, 2.0], np.float32))
    got = pair(np.array([9.0], np.float16), np.array([1.0], np.float32))
    assert compare(got, want, TOL, public=True).stage == "shape"
