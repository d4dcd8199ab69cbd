"""What the harness reports about the model (graders/child/model_probe.py), run in this process on real Flax
modules: the outermost modules are the model, traced copies are not, Variable types and plain arrays are
named, checks record what the parent needs. Every report passes the parent's schema.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

from graders.child import harness, model_probe
from graders.probe_schema import Probes, parse_probes

ARGS = {"args": [{"s": 0.0}, {"a": 0, "dtype": "float32"}]}
X = [np.arange(6, dtype=np.float32).reshape(2, 3) / 6]


def run(code: str, probes: dict[str, Any], test: dict[str, Any] = ARGS,
        arrays: list[np.ndarray] = X) -> tuple[dict[str, Any], list[np.ndarray], Probes]:
    probes = {"arg_names": ["seed", "x"], **probes}
    model_probe.prepare(probes)
    load, fn = harness.load_program(code, "f")
    assert fn is not None, load
    header, leaves = harness.run_test(fn, test, arrays, 1 << 24, probes, sys.modules["submission"].__dict__)
    assert header["status"] == "ok", header
    return header, leaves, parse_probes(header["probes"], len(leaves), 0)


CAPTURED = {"model": {"from": "captured"}, "state": {"values": False}}


def test_outermost_modules_are_the_model_and_plain_arrays_are_named() -> None:
    code = """
import jax, jax.numpy as jnp
from flax import nnx
class Count(nnx.Variable): pass
class Block(nnx.Module):
    def __init__(self, rngs):
        self.seq = nnx.Sequential(nnx.Linear(3, 4, rngs=rngs), nnx.Dropout(0.5, rngs=rngs))
        self.count = Count(jnp.array(0, jnp.uint32))
        self.scale = jnp.ones(4)
    def __call__(self, x):
        self.count[...] += 1
        return self.seq(x) * self.scale
def f(seed, x):
    block = Block(nnx.Rngs(int(seed)))
    block.eval()
    return block(x)
"""
    _, _, probes = run(code, CAPTURED)
    assert probes.state is not None
    assert probes.state.roots == ["Block"]  # the Sequential and the layers inside are held by Block
    entries = {v.path: (v.type, v.base, v.shape, v.dtype) for v in probes.state.variables}
    assert entries == {
        "count": ("Count", "Variable", [], "uint32"),
        "scale": ("Array", "array", [4], "float32"),
        "seq.layers.0.bias": ("Param", "Param", [4], "float32"),
        "seq.layers.0.kernel": ("Param", "Param", [3, 4], "float32"),
    }  # the Dropout's RNG state is left out: how rngs are threaded is not the lesson
    assert probes.state.dropout_layers == 1  # ... but the Dropout itself is counted


def test_a_linen_module_is_named_when_no_nnx_module_was_built() -> None:
    code = """
import jax, jax.numpy as jnp
import flax.linen as nn
class Proj(nn.Module):
    features: int
    @nn.compact
    def __call__(self, x):
        return x @ self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
def f(seed, x):
    model = Proj(2)
    return model.apply(model.init(jax.random.key(int(seed)), x), x)
"""
    _, _, probes = run(code, CAPTURED)
    assert probes.state is not None and probes.state.roots == [] and probes.state.linen == ["Proj"]
    both = """
import flax.linen as nn
from flax import nnx
class Unused(nn.Module):
    pass
def f(seed, x):
    return nnx.Linear(3, 2, rngs=nnx.Rngs(int(seed)))(x)
"""
    _, _, nnx_built = run(both, CAPTURED)
    assert nnx_built.state is not None and nnx_built.state.linen == []  # an NNX model was built: not asked


def test_layers_built_as_arguments_and_traced_copies() -> None:
    code = """
import jax
from flax import nnx
def f(seed, x):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(nnx.Linear(3, 2, rngs=rngs), nnx.relu)   # the Linear is built first, then held

    @nnx.split_rngs(splits=3)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nnx.Linear(3, 2, rngs=rngs)   # built inside vmap: a traced copy
    create(rngs)
    return model(x)
"""
    _, _, probes = run(code, CAPTURED)
    assert probes.state is not None and probes.state.roots == ["Sequential"] and not probes.state.traced
    assert sorted(v.path for v in probes.state.variables) == ["layers.0.bias", "layers.0.kernel"]


@pytest.mark.parametrize("jit", ["jax.jit(f_, static_argnums=0)", "nnx.jit(f_, static_argnums=0)"])
def test_a_function_jitted_as_a_whole_shows_its_traced_model(jit: str) -> None:
    """Nothing concrete was built (the whole function ran under jit): the traced copy is all there is of the model,
    so its structure is described (it is the model the student wrote); it cannot be called afterwards, and the
    checks that would call it say why instead of "no nnx.Module was built"."""
    code = f"""
import jax
from flax import nnx
def f_(seed, x):
    return nnx.Linear(3, 2, rngs=nnx.Rngs(params=int(seed)))(x)
f = {jit}
"""
    probes_asked = {**CAPTURED, "gradients": {"wrt": "params", "args": [1]}, "eval_determinism": {"args": [1]}}
    _, _, probes = run(code, probes_asked)
    assert probes.state is not None and probes.state.error is None
    assert probes.state.roots == ["Linear"] and probes.state.traced
    entries = {v.path: (v.type, v.shape, v.dtype) for v in probes.state.variables}
    assert entries == {"bias": ("Param", [2], "float32"), "kernel": ("Param", [3, 2], "float32")}
    assert probes.gradients is not None and probes.gradients.error == model_probe.TRACED_ONLY
    assert probes.eval_determinism is not None and probes.eval_determinism.error == model_probe.TRACED_ONLY


def test_a_jitted_function_run_from_its_cache_still_shows_its_model() -> None:
    """A second test with the same static arguments and shapes runs the cached program: nothing is built or traced
    in that call, and the model is still the one the trace built (a new program does not inherit it)."""
    code = """
import jax
from flax import nnx
def f_(seed, x):
    return nnx.Linear(3, 2, rngs=nnx.Rngs(params=int(seed)))(x)
f = jax.jit(f_, static_argnums=0)
"""
    probes = {"arg_names": ["seed", "x"], **CAPTURED}
    model_probe.prepare(probes)
    states = []
    for program in (code, code):  # the second program is a new function: it does not inherit the first's model
        _, fn = harness.load_program(program, "f")
        for values in (X, [X[0] * 2]):  # same seed and shape: the second call hits the jit cache
            header, leaves = harness.run_test(fn, ARGS, values, 1 << 24, probes, sys.modules["submission"].__dict__)
            states.append(parse_probes(header["probes"], len(leaves), 0).state)
    assert all(s is not None and s.roots == ["Linear"] and s.traced for s in states), states
    _, fn = harness.load_program("def f(seed, x):\n    return x\n", "f")
    header, leaves = harness.run_test(fn, ARGS, X, 1 << 24, probes, sys.modules["submission"].__dict__)
    state = parse_probes(header["probes"], len(leaves), 0).state
    assert state is not None and state.roots == []  # a function that builds nothing shows nothing


def test_a_reference_whose_model_is_only_traced_turns_no_state_check_on() -> None:
    """State checks are on by default when the reference builds a model: a traced copy (the reference vmaps or jits
    its constructor) does not count, as before traced copies were described at all."""
    from graders.model_checks import ProbeReport
    from graders.reference import ProgramOutputs, ReferenceOutputs

    built = """
from flax import nnx
def f(seed, x):
    return nnx.Linear(3, 2, rngs=nnx.Rngs(params=int(seed)))(x)
"""
    traced = built + "import jax\nf = jax.jit(f, static_argnums=0)\n"

    def builds_model(code: str) -> bool:
        _, leaves, probes = run(code, CAPTURED)
        program = ProgramOutputs(probes={0: ProbeReport(probes, tuple(leaves))})
        return ReferenceOutputs("key", program, {}).builds_model

    assert builds_model(built) and not builds_model(traced)


def test_build_function_and_values_when_asked() -> None:
    code = """
import jax.numpy as jnp
from flax import nnx
class Count(nnx.Variable): pass
class Counter(nnx.Module):
    def __init__(self):
        self.count = Count(jnp.array(7, jnp.uint32))
def build_model(seed, x):
    return Counter()
def f(seed, x):
    return x
"""
    _, leaves, probes = run(code, {"model": {"from": "build", "build": "build_model"}, "state": {"values": True}})
    assert probes.state is not None and probes.state.roots == ["Counter"]
    (entry,) = probes.state.variables
    assert entry.value is not None and int(leaves[entry.value]) == 7
    _, _, missing = run(code, {"model": {"from": "build", "build": "make"}, "state": {"values": False}})
    assert missing.state is not None and missing.state.error is not None
    assert "no function named `make`" in missing.state.error


RETRACE_ONCE = """
import jax.numpy as jnp
from flax import nnx
@nnx.jit
def step(model, x):
    return model(x).sum()
def f(seed, x):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(int(seed)))
    return jnp.stack([step(model, x) for _ in range(4)])
"""
RETRACE_EVERY_STEP = """
import jax, jax.numpy as jnp
from flax import nnx
def f(seed, x):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(int(seed)))
    out = []
    for i in range(4):
        step = jax.jit(lambda x, i: (x * i).sum(), static_argnums=1)   # static step number: one trace each
        out.append(step(x, i))
    return jnp.stack(out)
"""

# A jitted training step and a jitted evaluation, as the Flax tutorials write them: each function is traced once.
RETRACE_STEP_AND_EVAL = """
import jax, jax.numpy as jnp
from flax import nnx
@nnx.jit
def step(model, x):
    return model(x).sum()
@nnx.jit
def evaluate(model, x):
    return model(x)
@jax.jit
def scale(x):
    return x * 2
def f(seed, x):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(int(seed)))
    losses = jnp.stack([step(model, x) for _ in range(4)])
    return losses, evaluate(model, scale(x))
"""
# nnx.jit made anew on every iteration: new function objects around one function's code, traced 3 times.
RETRACE_NNX_JIT_IN_LOOP = """
import jax.numpy as jnp
from flax import nnx
def f(seed, x):
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(int(seed)))
    out = []
    for _ in range(3):
        @nnx.jit
        def step(model, x):
            return model(x).sum()
        out.append(step(model, x))
    return jnp.stack(out), nnx.jit(lambda m: m(x))(model)
"""


@pytest.mark.parametrize(("code", "traces"), [(RETRACE_ONCE, 1), (RETRACE_EVERY_STEP, 4), (RETRACE_STEP_AND_EVAL, 1),
                                              (RETRACE_NNX_JIT_IN_LOOP, 3)])
def test_retrace_counts_top_level_traces_of_one_call(code: str, traces: int) -> None:
    """The count is the most traced function's: several jitted functions traced once each are no retrace."""
    _, _, probes = run(code, {"retrace": True})
    assert probes.retrace is not None and probes.retrace.traces == traces


def test_gradients_of_params_and_of_inputs() -> None:
    frozen = """
import jax
from flax import nnx
class Dense(nnx.Module):
    def __init__(self, rngs):
        self.w = nnx.Param(jax.random.normal(rngs.params(), (3, 2)))
    def __call__(self, x):
        return x @ jax.lax.stop_gradient(self.w[...])
def f(seed, x):
    return Dense(nnx.Rngs(int(seed)))(x)
"""
    spec = {"model": {"from": "captured"}, "gradients": {"wrt": "params", "args": [1], "loss": "sum_squares"}}
    _, leaves, probes = run(frozen, spec)
    assert probes.gradients is not None
    (entry,) = probes.gradients.entries
    assert entry.path == "w" and entry.shape == [3, 2] and not np.any(leaves[entry.value])
    _, leaves, probes = run(frozen.replace("jax.lax.stop_gradient(self.w[...])", "self.w[...]"), spec)
    assert probes.gradients is not None and np.any(leaves[probes.gradients.entries[0].value])
    _, leaves, probes = run(frozen, {"gradients": {"wrt": "inputs", "args": [1], "loss": "sum"}})
    assert probes.gradients is not None and probes.gradients.entries[0].path == "x"
    assert leaves[probes.gradients.entries[0].value].shape == (2, 3)


def test_batch_rows_and_eval_repeats() -> None:
    code = """
import jax, jax.numpy as jnp
from flax import nnx
def f(seed, x):
    model = nnx.Sequential(nnx.Linear(3, 3, rngs=nnx.Rngs(0)), nnx.Dropout(0.5, rngs=nnx.Rngs(1)))
    return x - x.mean(0)   # mixes rows
"""
    spec = {"model": {"from": "captured"}, "batch_invariance": {"arg": 1, "rows": 2},
            "eval_determinism": {"args": [1]}}
    _, leaves, probes = run(code, spec)
    rows = probes.batch_invariance
    assert rows is not None and rows.batch == 2 and [r.row for r in rows.rows] == [0, 1]
    assert leaves[rows.rows[0].tree["i"]].shape == (1, 3)
    repeat = probes.eval_determinism
    assert repeat is not None and repeat.first is not None and repeat.second is not None
    np.testing.assert_array_equal(leaves[repeat.first["i"]], leaves[repeat.second["i"]])


def test_a_probe_that_raises_is_that_probe_s_error_not_the_test_s() -> None:
    code = """
from flax import nnx
def f(seed, x):
    if x.shape[0] == 1:
        raise ValueError("needs two rows")
    return x * 2
"""
    header, _, probes = run(code, {"batch_invariance": {"arg": 1, "rows": 2}})
    assert header["status"] == "ok"
    assert probes.batch_invariance is not None and probes.batch_invariance.error is not None
    assert "ValueError: needs two rows" in probes.batch_invariance.error


def test_the_layers_holding_parameters_are_listed_in_the_order_they_were_built() -> None:
    code = """
from flax import nnx
class Net(nnx.Module):
    def __init__(self, rngs):
        self.head = nnx.Linear(4, 2, rngs=rngs)  # built first, whatever its name sorts as
        self.body = nnx.Sequential(nnx.Linear(3, 4, rngs=rngs), nnx.BatchNorm(4, rngs=rngs), nnx.Dropout(0.5))
    def __call__(self, x):
        return self.head(self.body(x))
def f(seed, x):
    net = Net(nnx.Rngs(int(seed)))
    net.eval()
    return net(x)
"""
    _, _, probes = run(code, CAPTURED)
    assert probes.state is not None
    # Net and the Sequential hold no parameter of their own; the Dropout none at all.
    assert [(layer.type, layer.shapes) for layer in probes.state.layers] == [
        ("Linear", [[4, 2], [2]]), ("Linear", [[3, 4], [4]]), ("BatchNorm", [[4], [4]])]
    assert [layer.path for layer in probes.state.layers] == ["head", "body.layers.0", "body.layers.1"]
    assert [layer.kind for layer in probes.state.layers] == ["Linear", "Linear", "BatchNorm"]


def test_a_layer_class_of_the_programs_own_is_of_kind_module_and_a_flax_subclass_keeps_its_kind() -> None:
    code = """
import jax.numpy as jnp
from flax import nnx
class Scale(nnx.Module):
    def __init__(self):
        self.w = nnx.Param(jnp.ones(3))
class MyLinear(nnx.Linear):
    pass
def f(seed, x):
    rngs = nnx.Rngs(int(seed))
    return MyLinear(3, 2, rngs=rngs)(x * Scale().w[...])
"""
    _, _, probes = run(code, CAPTURED)
    assert probes.state is not None
    assert sorted((layer.type, layer.kind) for layer in probes.state.layers) == [("MyLinear", "Linear"),
                                                                                  ("Scale", "Module")]
