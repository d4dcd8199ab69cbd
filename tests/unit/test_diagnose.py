"""Diagnosis: Flax-version pitfalls are recognised from the errors Flax 0.12 really raises, and known
mistakes are matched by their outputs.

The pitfall tests trigger each error with the installed jax/flax/optax (trusted test code, in this
process) instead of copying messages, so a Flax upgrade that rewords an error fails here first.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.nnx  # noqa: F401  (the lambdas below reach it as __import__('flax').nnx, whatever ran first)
import numpy as np
import pytest

from graders.compare import Output
from graders.diagnose import PITFALLS, matching_mistake, pitfall_for
from graders.problem import KnownMistake, Tolerance


def _error_of(action: Callable[[], object]) -> tuple[str, str]:
    try:
        action()
    except Exception as exc:  # any error is what we want to classify
        return type(exc).__name__, str(exc)
    raise AssertionError("the snippet did not raise")


def _plain_list_assigned() -> object:
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.layers = [nnx.Linear(2, 3, rngs=rngs), nnx.Linear(3, 1, rngs=rngs)]

    return MLP(nnx.Rngs(0))


def _plain_list_appended() -> object:
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.layers = []
            self.layers.append(nnx.Linear(2, 3, rngs=rngs))

    return MLP(nnx.Rngs(0))


def _plain_dict() -> object:
    from flax import nnx

    class Heads(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.heads = {"a": nnx.Linear(2, 3, rngs=rngs)}

    return Heads(nnx.Rngs(0))


def _variable_in_place() -> object:
    import jax.numpy as jnp
    from flax import nnx

    class Count(nnx.Variable):
        pass

    class Counter(nnx.Module):
        def __init__(self) -> None:
            self.count = Count(jnp.array(0, dtype=jnp.uint32))

        def __call__(self) -> None:
            self.count += 1

    return Counter()()


def _linear_and_optimizer(wrt: bool = True):  # type: ignore[no-untyped-def]
    import optax
    from flax import nnx

    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    if not wrt:
        return model, nnx.Optimizer(model, optax.sgd(0.1))  # type: ignore[call-arg]
    return model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)


def _update_without_model() -> object:
    import jax.numpy as jnp
    from flax import nnx

    model, optimizer = _linear_and_optimizer()
    grads = nnx.grad(lambda m: (m(jnp.ones((1, 2))) ** 2).mean())(model)
    return optimizer.update(grads)


def _jit_over_seed() -> object:
    import jax
    from flax import nnx

    return jax.jit(lambda seed: nnx.Rngs(int(seed)).params())(1.0)


def _input_on_empty_stdin() -> object:
    """input() as a graded child runs it: stdin is /dev/null (graders/child/harness.py detach_stdin)."""
    import io
    import sys

    saved, sys.stdin = sys.stdin, io.StringIO("")
    try:
        return input()
    finally:
        sys.stdin = saved


def _breakpoint_on_empty_stdin() -> object:
    """A debugger prompt at the end of its input quits (`breakpoint()` in a graded child)."""
    import io
    import pdb
    import sys

    debugger = pdb.Pdb(stdin=io.StringIO(""), stdout=io.StringIO())
    debugger.use_rawinput = False
    try:
        debugger.set_trace()
        return "the debugger let the program go on"
    finally:
        sys.settrace(None)


def _attention(**kwargs: object) -> object:
    import jax.numpy as jnp
    from flax import nnx

    return nnx.MultiHeadAttention(num_heads=2, in_features=4, rngs=nnx.Rngs(0), **kwargs)(jnp.ones((1, 3, 4)))


def _linear_with(**kwargs: object) -> object:
    """An initializer factory handed over uncalled, the way a student writes it, and the layer then used."""
    import jax.numpy as jnp
    from flax import nnx

    return nnx.Linear(3, 4, rngs=nnx.Rngs(0), **kwargs)(jnp.ones((2, 3)))


# (pitfall id, a snippet that raises the real error on the pinned library versions)
REAL_ERRORS: list[tuple[str, Callable[[], object]]] = [
    ("plain-list-of-modules", _plain_list_assigned),
    ("plain-list-of-modules", _plain_list_appended),
    ("plain-list-of-modules", _plain_dict),
    ("variable-in-place-arithmetic", _variable_in_place),
    ("optimizer-update-without-model", _update_without_model),
    ("optimizer-without-wrt", lambda: _linear_and_optimizer(wrt=False)),
    ("optimizer-model-attribute", lambda: _linear_and_optimizer()[1].model),
    ("rngs-stream-missing", lambda: __import__("flax").nnx.Rngs(params=0)()),
    ("float-shape", lambda: __import__("jax").numpy.zeros((2, 4.0))),
    ("float-shape", lambda: __import__("flax").nnx.Linear(3, 4.0, rngs=__import__("flax").nnx.Rngs(0))),
    ("float-seed", lambda: __import__("flax").nnx.Rngs(0.0).params()),
    ("float-seed", lambda: __import__("flax").nnx.Rngs(params=3.0).params()),
    ("float-as-integer", lambda: list(range(3.0))),  # type: ignore[call-overload]
    ("jit-over-scalar-arguments", _jit_over_seed),
    ("float-prng-seed", lambda: __import__("jax").random.key(0.0)),
    ("float-prng-seed", lambda: __import__("jax").random.PRNGKey(3.0)),
    ("reads-stdin", _input_on_empty_stdin),
    ("reads-stdin", _breakpoint_on_empty_stdin),
    ("batchnorm-mode-missing",
     lambda: __import__("flax").nnx.BatchNorm(3, use_running_average=None, rngs=__import__("flax").nnx.Rngs(0))(
         __import__("jax").numpy.ones((2, 3)))),
    ("dropout-mode-missing", lambda: _attention(decode=False, dropout_rate=0.1)),
    ("dropout-mode-missing", lambda: __import__("flax").nnx.Dropout(0.5, deterministic=None)(
        __import__("jax").numpy.ones(3))),
    ("dropout-without-rngs", lambda: __import__("flax").nnx.Dropout(0.5)(__import__("jax").numpy.ones(3))),
    ("attention-decode-missing", _attention),
    ("nnx-name-missing", lambda: __import__("flax").nnx.Dense),
    ("nnx-name-missing", lambda: __import__("flax").nnx.dot_product_attention_weights),
    ("nnx-name-missing", lambda: exec("from flax.nnx import Conv2D")),
    ("initializer-not-called", lambda: _linear_with(kernel_init=__import__("flax").nnx.initializers.he_normal)),
    ("initializer-not-called", lambda: _linear_with(kernel_init=__import__("flax").nnx.initializers.xavier_uniform)),
    ("initializer-not-called", lambda: _linear_with(bias_init=__import__("flax").nnx.initializers.constant)),
    ("initializer-not-called", lambda: _linear_with(kernel_init=__import__("jax").nn.initializers.normal)),
]


@pytest.mark.parametrize(("pitfall_id", "action"), REAL_ERRORS,
                         ids=[f"{p}-{i}" for i, (p, _) in enumerate(REAL_ERRORS)])
def test_real_flax_error_is_recognised(pitfall_id: str, action: Callable[[], object]) -> None:
    error_type, message = _error_of(action)
    found = pitfall_for(error_type, message)
    assert found is not None, f"{error_type}: {message[:500]}"
    assert found.id == pitfall_id, f"{found.id} for {error_type}: {message[:500]}"


def test_every_pitfall_has_a_real_error() -> None:
    assert {p.id for p in PITFALLS} == {pid for pid, _ in REAL_ERRORS}


@pytest.mark.parametrize("action", [
    lambda: 1 / 0,
    lambda: __import__("jax").numpy.ones((2, 3)) @ __import__("jax").numpy.ones((2, 3)),
    lambda: __import__("jax").random.key(0) + 1.5,
    lambda: {"key": 1}["float"],
    lambda: __import__("flax").nnx.Linear(3, 4, rngs=__import__("flax").nnx.Rngs(0))(
        __import__("jax").numpy.ones((2, 5))),
    lambda: __import__("pickle").loads(b""),
], ids=["zero-division", "matmul-shapes", "key-plus-float", "key-error", "linear-wrong-input", "pickle-eof"])
def test_unrelated_errors_get_no_pitfall(action: Callable[[], object]) -> None:
    error_type, message = _error_of(action)
    assert pitfall_for(error_type, message) is None, f"{error_type}: {message[:300]}"


def _leaf(values: list[float]) -> Output:
    return Output({"t": "leaf", "i": 0}, (np.asarray(values, dtype=np.float32),))


MISTAKE_A = KnownMistake(id="a", message="A", code="")
MISTAKE_B = KnownMistake(id="b", message="B", code="")


def test_matching_mistake_needs_every_shared_test_to_agree() -> None:
    tol = Tolerance()
    submission = {0: _leaf([1.0, 2.0]), 1: _leaf([3.0])}
    a = {0: _leaf([1.0, 2.0]), 1: _leaf([4.0])}   # agrees on one test only
    b = {0: _leaf([1.0, 2.0]), 1: _leaf([3.0])}
    assert matching_mistake(submission, [(MISTAKE_A, a), (MISTAKE_B, b)], tol) is MISTAKE_B


def test_matching_mistake_ignores_tests_without_outputs() -> None:
    tol = Tolerance()
    # The submission crashed on test 1; the mistake crashed on test 2: only test 0 is shared.
    submission = {0: _leaf([1.0]), 2: _leaf([5.0])}
    mistake = {0: _leaf([1.0 + 1e-7]), 1: _leaf([9.0])}
    assert matching_mistake(submission, [(MISTAKE_A, mistake)], tol) is MISTAKE_A


def test_no_mistake_for_a_submission_without_outputs() -> None:
    assert matching_mistake({}, [(MISTAKE_A, {0: _leaf([1.0])})], Tolerance()) is None


@pytest.mark.parametrize(("name", "says"), [
    ("Dense", "`flax.nnx` has no `Dense`: use `nnx.Linear(in_features, out_features, rngs=rngs)`"),
    ("Conv2D", "use `nnx.Conv(in_features, out_features, kernel_size=(3, 3), rngs=rngs)`"),
    ("ReLU", "use the function `nnx.relu` (an activation is a function"),
    ("LeakyReLU", "use the function `nnx.leaky_relu`"),
    ("MaxPool2d", "the function `nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))`"),
    ("compact", "`@nn.compact` is Flax Linen"),
    ("softmax_cross_entropy", "a loss from `optax`"),
    ("dot_product_attention_weights", "`flax.nnx.nn.attention.dot_product_attention_weights("),
    ("Frobnicate", "`flax.nnx` (Flax 0.12) has no `Frobnicate`: check the name against the NNX API"),
])
def test_a_name_nnx_lacks_gets_what_to_write_instead(name: str, says: str) -> None:
    from flax import nnx

    error_type, message = _error_of(lambda: getattr(nnx, name))
    found = pitfall_for(error_type, message)
    assert found is not None and found.id == "nnx-name-missing"
    assert says in found.advice, found.advice
