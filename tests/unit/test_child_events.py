"""The result channel's event schema and order (graders/child_events.py), and how the engine blames a
violation: each class of forged or malformed message is refused with a clear reason, and the verdict is
runtime_error charged to the submission, never internal_error (ATTACKS.md rows 31 and 32)."""

from __future__ import annotations

import fractions
import re
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from graders import wire
from graders.cases import build_cases
from graders.child_events import ChannelViolation, ResultChannel
from graders.engine import judge
from graders.problem import ProblemBank
from graders.reference import ProgramOutputs, ReferenceOutputs
from graders.report import Verdict
from graders.sandbox import ChildOutcome

ROOT = Path(__file__).resolve().parent.parent.parent
READY = {"event": "ready", "pid": 12}
LOAD_OK = {"event": "load", "program": 0, "status": "ok"}
LEAF = {"t": "leaf", "i": 0}


def start(i: int) -> dict[str, Any]:
    return {"event": "start", "program": 0, "index": i}


def ok(i: int, **extra: Any) -> dict[str, Any]:
    return {"event": "test", "program": 0, "index": i, "status": "ok", "duration_ms": 1.25, "tree": LEAF, **extra}


def stream(*headers: dict[str, Any], arrays: dict[int, list[np.ndarray]] | None = None) -> bytes:
    arrays = arrays or {}
    return b"".join(wire.encode(h, arrays.get(n, [np.zeros(2)] if h.get("status") == "ok" and h.get("event") == "test"
                                             else [])) for n, h in enumerate(headers))


def feed(data: bytes, tests: int = 2, programs: int = 1) -> list[str]:
    channel = ResultChannel(programs=programs, tests=tests, budget=1 << 20)
    return [m.kind for m in channel.feed(data)]


def refused(data: bytes, tests: int = 2) -> str:
    with pytest.raises(ChannelViolation) as raised:
        feed(data, tests)
    return str(raised.value)


def test_the_harness_sequence_is_accepted() -> None:
    error = {"event": "test", "program": 0, "index": 1, "status": "error", "duration_ms": 3, "error_type": "ValueError",
             "message": "bad", "traceback": "Traceback ...", "line": 4}
    data = stream(READY, LOAD_OK, start(0), ok(0), start(1), error, {"event": "done"})
    assert feed(data) == ["ready", "load", "start", "test", "start", "test", "done"]
    # A program that does not load has no tests; several programs follow each other.
    bad_load = {"event": "load", "program": 0, "status": "invalid", "message": "no function named `f`"}
    two = stream(READY, bad_load, {**LOAD_OK, "program": 1}, {**start(0), "program": 1}, {**ok(0), "program": 1},
                 {"event": "done"})
    assert feed(two, tests=1, programs=2) == ["ready", "load", "load", "start", "test", "done"]


@pytest.mark.parametrize(("header", "reason"), [
    ({"event": "start"}, "program: Field required; index: Field required"),  # the missing field
    ({"event": "start", "program": 0, "index": "0"}, "index: Input should be a valid integer"),
    ({"event": "start", "program": 0, "index": 0.0}, "index: Input should be a valid integer"),
    ({"event": "start", "program": 0, "index": True}, "index: Input should be a valid integer"),
    ({"event": "start", "program": 0, "index": -1}, "index: Input should be greater than or equal to 0"),
    ({"event": "start", "program": 0, "index": 0, "verdict": "accepted"}, "verdict: Extra inputs are not permitted"),
    ({"verdict": "accepted"}, "has no 'event' field"),
    ({"event": "accepted"}, "does not match any of the expected tags"),
    ({"event": ["start"]}, "a message that is not valid"),
])
def test_malformed_events_are_refused_with_the_reason(header: dict[str, Any], reason: str) -> None:
    message = refused(stream(READY, LOAD_OK, header))
    assert reason in message, message


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("duration_ms", {"x": 1}, "duration_ms: Input should be a valid number"),  # the wrongly typed field
    ("duration_ms", -5.0, "greater than or equal to 0"),
    ("tree", {"t": "leaf", "i": 0, "x": 1}, "tree.leaf.x: Extra inputs are not permitted"),
    ("tree", {"t": "dict", "k": ["a", "b"], "c": [LEAF]}, "2 keys for 1 values"),
    ("tree", {"t": "set", "c": []}, "does not match any of the expected tags"),
])
def test_wrongly_typed_results_never_reach_the_report(field: str, value: Any, reason: str) -> None:
    message = refused(stream(READY, LOAD_OK, start(0), ok(0, **{field: value})))
    assert reason in message, message


def test_infinite_numbers_are_refused() -> None:
    """JSON has no infinity, but Python's parser reads 1e400 as one."""
    head = b'{"event":"test","program":0,"index":0,"status":"ok","duration_ms":1e400,"tree":{"t":"leaf","i":0}}'
    forged = wire.MAGIC + struct.pack("<I", len(head)) + head + struct.pack("<I", 0)
    assert "duration_ms: Input should be a finite number" in refused(stream(READY, LOAD_OK, start(0)) + forged)


def test_overlong_strings_are_refused() -> None:
    error = {"event": "test", "program": 0, "index": 0, "status": "error", "duration_ms": 3, "error_type": "E" * 201,
             "message": "m", "traceback": "", "line": None}
    assert "error_type: String should have at most 200 characters" in refused(stream(READY, LOAD_OK, start(0), error))


@pytest.mark.parametrize(("headers", "reason"), [
    ([LOAD_OK], "expected 'ready', got the 'load' of program 0"),
    ([READY, READY], "expected the 'load' of program 0, got a 'ready' event"),
    ([READY, LOAD_OK, ok(0)], "expected the 'start' of test 0, got the result of test 0"),
    ([READY, LOAD_OK, start(1)], "expected the 'start' of test 0, got the 'start' of test 1"),
    ([READY, LOAD_OK, start(0), ok(0), ok(0)], "expected the 'start' of test 1, got the result of test 0"),
    ([READY, LOAD_OK, start(0), ok(0), start(1), ok(1), start(2)], "expected 'done', got the 'start' of test 2"),
    ([READY, LOAD_OK, start(0), ok(0), start(1), ok(1), {"event": "done"}, {"event": "done"}],
     "expected nothing (the run had ended), got 'done'"),
    ([READY, {**LOAD_OK, "program": 1}], "expected the 'load' of program 0, got the 'load' of program 1"),
])
def test_events_out_of_order_are_refused(headers: list[dict[str, Any]], reason: str) -> None:
    """Each test is reported once, after its own start, with an index in range; nothing after done."""
    message = refused(stream(*headers))
    assert reason in message, message


def test_arrays_must_match_the_result_tree() -> None:
    pair = {"t": "tuple", "c": [LEAF, {"t": "leaf", "i": 1}]}
    assert feed(stream(READY, LOAD_OK, start(0), ok(0, tree=pair), arrays={3: [np.zeros(1), np.ones(1)]}), 1)
    for arrays in ([np.zeros(1)], [np.zeros(1)] * 3):
        message = refused(stream(READY, LOAD_OK, start(0), ok(0, tree=pair), arrays={3: arrays}), 1)
        assert "describes 2 arrays" in message
    swapped = {"t": "tuple", "c": [{"t": "leaf", "i": 1}, LEAF]}
    assert "out of order" in refused(stream(READY, LOAD_OK, start(0), ok(0, tree=swapped),
                                            arrays={3: [np.zeros(1), np.ones(1)]}), 1)
    assert "may carry none" in refused(stream(READY, LOAD_OK, start(0), arrays={2: [np.zeros(1)]}))


def test_a_model_description_may_carry_arrays_after_the_outputs() -> None:
    """`probes` (graders/probe_schema.py) is checked like every field: its arrays follow the outputs', and
    each index it names must be one of them."""
    entry = {"path": "kernel", "type": "Param", "base": "Param", "shape": [2], "dtype": "float64"}
    described = {"state": {"roots": ["M"], "variables": [{**entry, "value": 1}]}, "duration_ms": 0.5}
    two = {3: [np.zeros(2), np.ones(2)]}
    assert feed(stream(READY, LOAD_OK, start(0), ok(0, probes=described), arrays=two), 1)
    # More arrays than the outputs' without a description, a description pointing at an output's array or
    # at one never sent, and a field the harness never writes: all refused.
    assert "describes 1 arrays" in refused(stream(READY, LOAD_OK, start(0), ok(0), arrays=two), 1)
    for value in (0, 2):
        pointing = {"state": {"roots": ["M"], "variables": [{**entry, "value": value}]}}
        message = refused(stream(READY, LOAD_OK, start(0), ok(0, probes=pointing), arrays=two), 1)
        assert "points at an array that was not sent" in message, message
    forged = {"state": {"roots": ["M"], "variables": [], "verdict": "accepted"}}
    assert "not valid" in refused(stream(READY, LOAD_OK, start(0), ok(0, probes=forged), arrays=two), 1)


def test_a_deep_result_tree_is_refused() -> None:
    tree: dict[str, Any] = LEAF
    for _ in range(34):  # the harness sends at most 32 containers
        tree = {"t": "list", "c": [tree]}
    assert "nested" in refused(stream(READY, LOAD_OK, start(0), ok(0, tree=tree)), 1)


def test_events_before_a_violation_in_the_same_read_are_kept() -> None:
    channel = ResultChannel(programs=1, tests=1, budget=1 << 20)
    with pytest.raises(ChannelViolation) as raised:
        channel.feed(stream(READY, LOAD_OK, {"event": "start"}))
    assert [m.kind for m in raised.value.messages] == ["ready", "load"]


def test_wire_errors_keep_the_events_before_them() -> None:
    channel = ResultChannel(programs=1, tests=1, budget=1 << 20)
    with pytest.raises(wire.WireError, match="marker") as raised:
        channel.feed(stream(READY) + b'{"verdict": "accepted"}')
    assert [m.kind for m in raised.value.messages] == ["ready"]


# --------------------------------------------------------------------------------- the engine's verdict


@pytest.fixture(scope="module")
def problem() -> Any:
    return ProblemBank(ROOT / "problems").get("nnx-module-basics")


def outcome_of(data: bytes, tests: int) -> ChildOutcome:
    """What the parent's reader makes of `data`: the events it accepted and why it cut the channel."""
    outcome = ChildOutcome()
    channel = ResultChannel(programs=1, tests=tests, budget=1 << 20)
    try:
        outcome.messages = channel.feed(data)
    except wire.WireError as exc:
        outcome.messages = list(exc.messages)
        outcome.wire_error = str(exc)
    return outcome


@pytest.mark.parametrize("forged", [
    {"event": "start"},
    {"event": "test", "program": 0, "index": 0, "status": "ok", "duration_ms": {"evil": 1}, "tree": LEAF},
    {"event": "test", "program": 0, "index": 0, "status": "ok", "duration_ms": 1.0},
    {"event": "done", "verdict": "accepted"},
])
def test_a_forged_message_is_the_submissions_runtime_error(problem: Any, forged: dict[str, Any]) -> None:
    cases = build_cases(problem.problem)
    reference = ReferenceOutputs("k", ProgramOutputs(), {})
    for before in ([READY], [READY, LOAD_OK], [READY, LOAD_OK, start(0)]):
        started = time.monotonic()
        outcome = outcome_of(stream(*before, forged), len(cases))
        report = judge(problem, cases, reference, outcome, "submit")
        assert report.verdict == Verdict.RUNTIME_ERROR, report.message
        assert "wrote to the grader's result channel" in report.message
        assert "not your fault" not in report.message
        assert report.to_json_dict()["tests"] == [] or all(
            t["duration_ms"] is None or isinstance(t["duration_ms"], float) for t in report.to_json_dict()["tests"])
        assert time.monotonic() - started < 5


def test_no_ready_is_still_the_graders_fault(problem: Any) -> None:
    """Before `ready` no submitted code has run: a failure there is gradax's (internal_error, retried)."""
    cases = build_cases(problem.problem)
    report = judge(problem, cases, ReferenceOutputs("k", ProgramOutputs(), {}), ChildOutcome(), "submit")
    assert report.verdict == Verdict.INTERNAL_ERROR


def test_the_deepest_result_the_harness_sends_is_accepted() -> None:
    from graders.child.harness import MAX_DEPTH, OutputRejected, to_tree

    value: Any = np.zeros(2)
    for _ in range(MAX_DEPTH):  # containers at depths 0..31, the leaf at 32
        value = [value]
    leaves: list[np.ndarray] = []
    tree = to_tree(value, leaves, [1 << 20])
    assert feed(stream(READY, LOAD_OK, start(0), ok(0, tree=tree), arrays={3: leaves}), 1)
    with pytest.raises(OutputRejected):
        to_tree([value], [], [1 << 20])


@pytest.mark.parametrize(("value", "said"), [
    (np.zeros(2, dtype=np.complex64), "returned a numpy.ndarray of dtype complex64"),
    (np.array(["a"]), "returned a numpy.ndarray of dtype <U1"),
    ((x for x in ()), "returned a generator; only numbers and arrays are graded (a function with `yield` returns"),
    ("text", "returned a str;"),
    (object(), "returned an object; only numbers and arrays are graded"),
    (np.array([1, "a"], dtype=object), "returned a numpy.ndarray of dtype object"),
])
def test_a_rejected_output_names_its_type_as_students_know_it(value: Any, said: str) -> None:
    from graders.child.harness import OutputRejected, to_tree

    with pytest.raises(OutputRejected, match="^" + re.escape(said)):
        to_tree(value, [], [1 << 20])


class _NotArrayLike:
    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise ValueError()  # no message: the reason is the exception's name


@pytest.mark.parametrize(("value", "said"), [
    ([None, np.zeros(2)], "returned None at result[0]; only numbers and arrays are graded"),
    (None, "returned None; did you forget a `return`?"),
    ({"a": [np.zeros(2), {"b": "x"}]}, "returned a str at result['a'][1]['b']; only numbers and arrays are graded"),
    ((np.zeros(2), np.array(["a"])), "returned a numpy.ndarray at result[1] of dtype <U1"),
    ([_NotArrayLike()], "returned a _NotArrayLike at result[0] that is not array-like: ValueError"),
])
def test_a_rejected_item_of_a_result_is_named_by_where_it_is(value: Any, said: str) -> None:
    """Said of one item of a list or dict, "returned None; did you forget a `return`?" blamed the whole result."""
    from graders.child.harness import OutputRejected, to_tree

    with pytest.raises(OutputRejected, match="^" + re.escape(said)):
        to_tree(value, [], [1 << 20])


async def _coroutine_function() -> float:
    return 1.0


def _what_a_wrongly_written_function_returns() -> list[tuple[Any, str]]:
    from flax import nnx

    coroutine = _coroutine_function()
    coroutine.close()  # never awaited: closed so that it warns nothing
    return [
        (coroutine, "returned a coroutine; only numbers and arrays are graded (an `async def` function returns a "
                    "coroutine: define it with plain `def`)"),
        (nnx.Linear(2, 3, rngs=nnx.Rngs(0)), "returned a Linear; only numbers and arrays are graded (return what the "
                                            "module computes, e.g. `model(x)`, not the module itself)"),
        (_coroutine_function.__call__, "returned a method-wrapper; only numbers and arrays are graded (call it and "
                                       "return what it returns)"),
        ([1.0, _coroutine_function], "returned a function at result[1]; only numbers and arrays are graded (call it"),
        (fractions.Fraction(1, 3), "returned a Fraction; only numbers and arrays are graded (convert it with "
                                   "`float(...)`)"),
        (2**100, "returned an int too large for a 64-bit integer; numbers are graded as int64 or float (convert it "
                 "with `float(...)`)"),
        ([0.5, -(2**64)], "returned an int at result[1] too large for a 64-bit integer"),
    ]


def test_an_object_returned_instead_of_a_value_gets_what_to_return_instead() -> None:
    """An `async def` function, a generator function, a module or a function returned uncalled: numpy wraps each as
    a 0-d object array; the report said "returned a coroutine of dtype object", which tells a student nothing."""
    from graders.child.harness import OutputRejected, to_tree

    for value, said in _what_a_wrongly_written_function_returns():
        with pytest.raises(OutputRejected, match="^" + re.escape(said)):
            to_tree(value, [], [1 << 20])


def test_jax_objects_that_are_not_arrays_are_called_by_their_names() -> None:
    import jax

    from graders.child.harness import OutputRejected, to_tree

    with pytest.raises(OutputRejected, match=r"^returned a jax\.ShapeDtypeStruct; only numbers and arrays"):
        to_tree(jax.ShapeDtypeStruct((4,), np.float32), [], [1 << 20])


def test_a_rejected_jax_array_is_called_a_jax_array() -> None:
    import jax.numpy as jnp

    from graders.child.harness import OutputRejected, to_tree

    with pytest.raises(OutputRejected, match=r"^returned a jax\.Array of dtype complex64;"):
        to_tree(jnp.zeros(2, dtype=jnp.complex64), [], [1 << 20])


def _self_containing() -> list[Any]:
    value: list[Any] = [np.zeros(2)]
    value.append(value)
    return value


@pytest.mark.parametrize(("value", "said"), [
    (_self_containing(), "returned a structure nested more than 32 levels deep (or one that contains itself)"),
    ({1: np.zeros(2)}, "returned a dict with a key that is not a string"),
    ([0.0] * 10_001, "returned more than 10,000 arrays and numbers"),
])
def test_a_rejected_structure_is_said_as_what_the_function_returned(value: Any, said: str) -> None:
    """The report prefixes "Your function " (graders/engine.py): every rejection reads as what the function did."""
    from graders.child.harness import OutputRejected, to_tree

    with pytest.raises(OutputRejected, match="^" + re.escape(said)):
        to_tree(value, [], [1 << 20])


def test_a_result_that_contains_itself_is_a_bad_output_not_an_error_of_the_code() -> None:
    """jax cannot walk a list that contains itself (a RecursionError inside jax, surfaced as a SystemError): that
    was reported as if the submission's code had raised jax's SystemError. It is what the function returned."""
    from graders.child.harness import run_test

    header, leaves = run_test(lambda seed: _self_containing(), {"args": [{"s": 0.0}]}, [], 1 << 20)
    assert header["status"] == "bad_output" and leaves == [], header
    assert header["message"].startswith("returned a structure nested more than 32 levels deep (or one that contains "
                                        "itself)"), header
    # An error the code raises is still the code's.
    header, _ = run_test(lambda seed: 1 / 0, {"args": [{"s": 0.0}]}, [], 1 << 20)
    assert header["status"] == "error" and header["error_type"] == "ZeroDivisionError", header


def test_text_with_lone_surrogates_crosses_the_channel_as_the_code_wrote_it_less_the_surrogates() -> None:
    """A lone surrogate is not text: an exception message holding one (at the harness's full 4,000 characters), a
    dict key with one. They used to reach the parent as JSON escapes that decode back into
    strings no validator accepts, and the run was blamed as a forged message on the result channel."""
    from graders.child.harness import run_test

    def raises(seed: float) -> Any:
        raise ValueError("x\udfff" * 2000)

    error, _ = run_test(raises, {"args": [{"s": 0.0}]}, [], 1 << 20)
    keyed, leaves = run_test(lambda seed: {"k\ud800": np.zeros(2)}, {"args": [{"s": 0.0}]}, [], 1 << 20)
    data = stream(READY, LOAD_OK, start(0), {"event": "test", "program": 0, "index": 0, **error}, start(1),
                  {"event": "test", "program": 0, "index": 1, **keyed}, {"event": "done"}, arrays={5: leaves})
    channel = ResultChannel(programs=1, tests=2, budget=1 << 20)
    messages = channel.feed(data)
    assert [m.kind for m in messages] == ["ready", "load", "start", "test", "start", "test", "done"]
    sent_error, sent_keyed = messages[3].event, messages[5].event
    assert sent_error.error_type == "ValueError" and sent_error.message == "x?" * 2000  # type: ignore[attr-defined]
    assert sent_keyed.tree.k == ["k?"]  # type: ignore[attr-defined]
