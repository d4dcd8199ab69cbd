"""What the harness learns about the model a function builds, and the transform checks' raw results.

Runs inside the grading child, next to untrusted code (and in the trusted reference runner, on the
reference and the known mistakes, the same way). It decides nothing: it describes the model's state
(paths, Variable types, shapes, dtypes; values only when a problem asks) and runs the checks a problem
turned on, and the parent compares the results with the reference's (graders/model_checks.py), after
validating them (graders/probe_schema.py).

How the model is found (`state_checks.model`):
- `captured`: while the function runs, every `nnx.Module` whose constructor returns is recorded (the
  metaclass call is wrapped once per process). The model is the recorded modules that no other recorded
  module holds (the outermost), described after the function returns. Modules built inside a transform
  (`nnx.vmap`, `nnx.jit`) hold tracers: they are traced copies, not the model, and are left out.
- `build`: the problem names a function with the same arguments that returns the module.
For checks that call the model (gradients w.r.t. params, eval determinism) the model is the last
outermost module built.

Request (`header["probes"]`), all optional: `arg_names`, `model` {from: captured|build, build},
`state` {values}, `gradients` {wrt, args: [arg index], loss}, `retrace` (bool), `batch_invariance`
{arg, rows}, `eval_determinism` {args}. Result: a `probes` object in the test event (graders/probe_schema.py),
its arrays appended after the outputs'.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from graders import wire

MAX_RECORDED = 2048
MAX_VARIABLES = 512
MAX_LAYERS = 64
MAX_ERROR = 2000
_PATH_PART = re.compile(r"[^A-Za-z0-9_\-]")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
FLAX_BASES = ("Param", "BatchStat", "Cache", "Intermediate", "Perturbation", "OptState", "Variable")


class _Recorder:
    """Modules constructed while recording is on (one recording at a time: the harness is sequential)."""

    def __init__(self) -> None:
        self.modules: list[Any] | None = None
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        from flax.nnx import module as nnx_module
        from flax.nnx import pytreelib

        base_call = pytreelib.PytreeMeta.__call__
        recorder = self

        def recording_call(cls: Any, *args: Any, **kwargs: Any) -> Any:
            node = base_call(cls, *args, **kwargs)
            modules = recorder.modules
            if modules is not None and len(modules) < MAX_RECORDED:
                modules.append(node)
            return node

        nnx_module.ModuleMeta.__call__ = recording_call  # type: ignore[method-assign,assignment]
        self.installed = True

    @contextmanager
    def recording(self) -> Iterator[list[Any]]:
        self.install()
        modules: list[Any] = []
        self.modules = modules
        try:
            yield modules
        finally:
            self.modules = None


RECORDER = _Recorder()


def _traced_function(fun: Any) -> Any:
    """What makes two jitted functions "the same" for the trace count: the code of the function the submission
    wrote. `nnx.jit` hands `jax.jit` a wrapper of its own (`functools.update_wrapper` names the function it
    wraps), and a step jitted anew inside a loop is a new function object around the same code."""
    try:
        inner = inspect.unwrap(fun)
    except ValueError:  # a `__wrapped__` cycle
        inner = fun
    while isinstance(inner, functools.partial):
        inner = inner.func
    code = getattr(inner, "__code__", None)
    return code if isinstance(code, types.CodeType) else type(inner)


class _TraceCounter:
    """Counts top-level traces of every function jitted after `install`, per function (the body of a jitted
    function runs only while it is traced, so a wrapper around it counts traces; nested jits inside a trace do
    not count). The retrace check judges the most traced function: a jitted training step and a jitted
    evaluation (the Flax tutorials' `train_step` and `eval_step`) trace once each, which is no retrace; the same
    step traced on every iteration (made anew in the loop, or given a static number that changes) is."""

    def __init__(self) -> None:
        self.by_function: dict[Any, int] = {}
        self.depth = threading.local()
        self.installed = False

    @property
    def count(self) -> int:
        """Traces of the function traced most often since the last `reset`."""
        return max(self.by_function.values(), default=0)

    def reset(self) -> None:
        self.by_function = {}

    def install(self) -> None:
        if self.installed:
            return
        import jax

        original = jax.jit
        counter = self

        def counting_jit(fun: Any = None, *args: Any, **kwargs: Any) -> Any:
            if fun is None:  # used as @jax.jit(static_argnums=...)
                return functools.partial(counting_jit, *args, **kwargs)
            if not callable(fun):
                return original(fun, *args, **kwargs)
            key = _traced_function(fun)

            @functools.wraps(fun)
            def traced(*a: Any, **kw: Any) -> Any:
                depth = getattr(counter.depth, "value", 0)
                if depth == 0:
                    counter.by_function[key] = counter.by_function.get(key, 0) + 1
                counter.depth.value = depth + 1
                try:
                    return fun(*a, **kw)
                finally:
                    counter.depth.value = depth

            return original(traced, *args, **kwargs)

        jax.jit = counting_jit
        self.installed = True


TRACES = _TraceCounter()


def prepare(probes: dict[str, Any]) -> None:
    """Before the program is loaded: install what must see its module-level code (jit decorators)."""
    if probes.get("retrace"):
        TRACES.install()
    if (probes.get("model") or {}).get("from") == "captured":
        RECORDER.install()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]


def _is_tracer(value: Any) -> bool:
    import jax

    return isinstance(value, jax.core.Tracer)


def _flat_state(module: Any) -> list[tuple[tuple[Any, ...], Any]]:
    from flax import nnx

    return list(nnx.to_flat_state(nnx.state(module)))


def _leaf_value(leaf: Any) -> Any:
    from flax import nnx

    return leaf.get_value() if isinstance(leaf, nnx.Variable) else leaf


Roots = list[tuple[Any, list[tuple[tuple[Any, ...], Any]]]]


def outermost(recorded: list[Any]) -> tuple[Roots, Roots]:
    """The recorded modules no other recorded module holds, in construction order, each with its flat
    state: those with concrete state, and apart from them the traced copies (built inside a transform: their state
    holds tracers). A traced copy is not the model when a concrete module was built too (an `nnx.vmap` ensemble);
    when none was, the function ran under a transform as a whole (`jax.jit` around it) and the traced copies are all
    there is of the model."""
    from flax import nnx

    unique: dict[int, Any] = {}
    for module in recorded:
        unique.setdefault(id(module), module)
    held: set[int] = set()
    if len(unique) > 1:  # one module (the common case) holds nothing recorded: no graph walk needed
        for module in unique.values():
            for _, node in nnx.iter_graph(module):
                if node is not module and isinstance(node, nnx.Module):
                    held.add(id(node))
    roots: Roots = []
    traced: Roots = []
    for key, module in unique.items():
        if key in held:
            continue
        try:
            flat = _flat_state(module)
        except Exception:
            continue
        if any(_is_tracer(_leaf_value(leaf)) for _, leaf in flat):
            traced.append((module, flat))  # built inside a transform: a traced copy
        else:
            roots.append((module, flat))
    return roots, traced


def _path(parts: tuple[Any, ...]) -> str:
    return ".".join(_PATH_PART.sub("?", str(p))[:60] for p in parts)[:200]


def _base(cls: type) -> tuple[str, str]:
    """(type name, nearest built-in Flax base) of a state leaf's class."""
    name = cls.__name__ if _IDENT.match(cls.__name__) else "Unnamed"
    for klass in cls.__mro__:
        if klass.__module__.startswith("flax.") and klass.__name__ in FLAX_BASES:
            return name, klass.__name__
    return name, "other"


def _entry(parts: tuple[Any, ...], leaf: Any) -> dict[str, Any]:
    from flax import nnx

    if isinstance(leaf, nnx.Variable):
        type_name, base = _base(type(leaf))
        value = leaf.get_value()
    else:
        value = leaf
        is_array = isinstance(leaf, np.ndarray) or type(leaf).__module__.split(".")[0] in ("jax", "jaxlib")
        type_name, base = ("Array", "array") if is_array else (_base(type(leaf))[0], "other")
    entry: dict[str, Any] = {"path": _path(parts), "type": type_name, "base": base}
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        try:
            entry["shape"] = [int(d) for d in shape][:32]
            name = np.dtype(dtype).name if not hasattr(dtype, "name") else str(dtype.name)
            entry["dtype"] = name if re.match(r"^[a-z][a-z0-9_]{0,31}$", name) else "unknown"
        except (TypeError, ValueError):
            entry.pop("shape", None)
    return entry


def _is_rng_state(leaf: Any) -> bool:
    from flax import nnx

    return isinstance(leaf, nnx.RngState)


def linen_classes(program: Any) -> list[str]:
    """The Flax Linen module classes the program defines at module level (when it built no NNX module: the other
    Flax API, which the state check would otherwise call "plain arrays and functions")."""
    linen = sys.modules.get("flax.linen")
    base = getattr(linen, "Module", None)
    if not isinstance(program, dict) or not isinstance(base, type):
        return []
    names = [name for name, value in list(program.items())
             if isinstance(value, type) and issubclass(value, base) and value is not base]
    return [name for name in names if _IDENT.match(name)][:8]


def describe(roots: Roots, values: bool, arrays: list[np.ndarray], budget: list[int],
             traced: bool = False, linen: list[str] | None = None,
             built: dict[int, int] | None = None) -> dict[str, Any]:
    """The state of the model: every non-RNG leaf of `nnx.state` of each root (shared leaves once)."""
    seen: set[int] = set()
    variables: list[dict[str, Any]] = []
    truncated = False
    for _, flat in roots:
        for parts, leaf in flat:
            if _is_rng_state(leaf) or id(leaf) in seen:
                continue
            seen.add(id(leaf))
            if len(variables) >= MAX_VARIABLES:
                truncated = True
                break
            entry = _entry(parts, leaf)
            if values and "shape" in entry:
                arr = _to_plain(_leaf_value(leaf), budget)
                if arr is not None:
                    entry["value"] = len(arrays)
                    arrays.append(arr)
            variables.append(entry)
    dropouts, layers = _walk_layers(roots, built or {})
    return {"roots": [_base(type(r))[0] for r, _ in roots][:64], "variables": variables, "truncated": truncated,
            "traced": traced, "dropout_layers": dropouts, "layers": layers, "linen": linen or []}


def _walk_layers(roots: Roots, built: dict[int, int]) -> tuple[int, list[dict[str, Any]]]:
    """One walk of the roots' graphs, each module once: how many nnx.Dropout layers they hold (a Dropout holds no
    state but its RNG stream, so a model built without the statement's Dropout has the same variables as one
    with it), and the modules that hold a parameter of their own, in the order they were built (`built`: a
    module's place among the recorded constructions; a module not recorded is left out)."""
    from flax import nnx

    dropouts: set[int] = set()
    found: dict[int, tuple[int, dict[str, Any]]] = {}
    for root, _ in roots:
        try:
            for parts, node in nnx.iter_graph(root):
                if isinstance(node, nnx.Dropout):
                    dropouts.add(id(node))
                if id(node) in built and id(node) not in found:
                    shapes = _own_parameter_shapes(node)
                    if shapes:
                        found[id(node)] = (built[id(node)], {"type": _base(type(node))[0], "kind": _layer_kind(node),
                                                             "path": _path(parts), "shapes": shapes})
        except Exception:  # a graph nnx cannot walk: the variables were described without it
            continue
    layers = [layer for _, layer in sorted(found.values(), key=lambda item: item[0])][:MAX_LAYERS]
    return min(len(dropouts), 1_000_000), layers


def _layer_kind(module: Any) -> str:
    """The Flax layer class a module is (or derives from): `Linear`, `LayerNorm`; `Module` for a class of the
    program's own, whose name says nothing the reference's would."""
    for klass in type(module).__mro__:
        if klass.__module__.startswith("flax.nnx.nn.") and _IDENT.match(klass.__name__):
            return klass.__name__
    return "Module"


def _own_parameter_shapes(module: Any) -> list[list[int]]:
    """The shapes of the nnx.Params a module holds as its own attributes (not its sublayers'), in attribute order."""
    from flax import nnx

    shapes: list[list[int]] = []
    for value in list(vars(module).values()):
        if isinstance(value, nnx.Param) and len(shapes) < 16:
            shape = getattr(value.get_value(), "shape", None)
            if isinstance(shape, tuple) and len(shape) <= 32:
                shapes.append([int(d) for d in shape])
    return shapes


def _to_plain(value: Any, budget: list[int]) -> np.ndarray | None:
    """A numeric value as a fresh plain numpy array within the output budget (None when it is not one)."""
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    if arr.dtype.kind == "V" or arr.dtype.name in wire.EXTENDED:
        arr = arr.astype(np.float32)
    if arr.dtype.kind not in "biuf" or arr.nbytes > budget[0]:
        return None
    budget[0] -= arr.nbytes
    return np.array(arr, dtype=arr.dtype, copy=True, subok=False, order="C")


def _loss(out: Any, kind: str) -> Any:
    import jax
    import jax.numpy as jnp

    leaves = [leaf for leaf in jax.tree.leaves(out) if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating)]
    if not leaves:
        raise ValueError("the result has no float values to differentiate")
    if kind == "sum":
        return sum(jnp.sum(leaf) for leaf in leaves)
    return sum(jnp.sum(jnp.square(leaf)) for leaf in leaves)


def gradients(spec: dict[str, Any], fn: Callable[..., Any], args: list[Any], model: Any, arg_names: list[str],
              arrays: list[np.ndarray], budget: list[int]) -> dict[str, Any]:
    import jax
    from flax import nnx

    loss_kind = spec.get("loss", "sum_squares")
    picked = [int(i) for i in spec["args"]]
    entries: list[dict[str, Any]] = []
    if spec["wrt"] == "inputs":
        def loss_of(*wrt: Any) -> Any:
            call = list(args)
            for index, value in zip(picked, wrt, strict=True):
                call[index] = value
            return _loss(fn(*call), loss_kind)

        grads = jax.grad(loss_of, argnums=tuple(range(len(picked))))(*[args[i] for i in picked])
        named: list[tuple[tuple[Any, ...], Any]] = [((arg_names[i],), g) for i, g in zip(picked, grads, strict=True)]
    else:
        if model is None:
            return {"error": "no model to differentiate: no nnx.Module was built"}
        call_args = [args[i] for i in picked]
        grads_state = nnx.grad(lambda m: _loss(m(*call_args), loss_kind))(model)
        named = [(parts, leaf) for parts, leaf in nnx.to_flat_state(grads_state)]
    for parts, leaf in named[:MAX_VARIABLES]:
        value = _leaf_value(leaf)
        arr = _to_plain(value, budget)
        if arr is None:
            continue
        type_name = _base(type(leaf))[0] if isinstance(leaf, nnx.Variable) else "Array"
        entries.append({"path": _path(parts), "type": type_name, "shape": list(arr.shape), "value": len(arrays)})
        arrays.append(arr)
    return {"entries": entries}


def batch_rows(spec: dict[str, Any], fn: Callable[..., Any], args: list[Any], arrays: list[np.ndarray],
               budget: list[int], to_tree: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """The function on single rows `x[i:i+1]` of the batched argument, for evenly spaced rows."""
    import jax.numpy as jnp

    index = int(spec["arg"])
    batch = args[index]
    size = int(batch.shape[0]) if getattr(batch, "ndim", 0) else 0
    count = min(int(spec.get("rows", 2)), size)
    if count == 0:
        return {"batch": size, "rows": []}
    picks = sorted({round(k * (size - 1) / max(count - 1, 1)) for k in range(count)})
    rows = []
    host = np.asarray(batch)
    for row in picks:
        call = list(args)
        # Sliced on the host: `batch[row:row + 1]` on the device compiles a dynamic_slice per shape (~30 ms)
        # that no warm-up covers. The row arrives as the whole batch did (graders/child/harness.py _build_args).
        call[index] = jnp.asarray(host[row:row + 1])
        rows.append({"row": row, "tree": to_tree(_ready(fn(*call)), arrays, budget)})
    return {"batch": size, "rows": rows}


def eval_repeat(spec: dict[str, Any], model: Any, args: list[Any], arrays: list[np.ndarray], budget: list[int],
                to_tree: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    if model is None:
        return {"error": "no model to put in evaluation mode: no nnx.Module was built"}
    call_args = [args[int(i)] for i in spec["args"]]
    model.eval()
    first = to_tree(_ready(model(*call_args)), arrays, budget)
    second = to_tree(_ready(model(*call_args)), arrays, budget)
    return {"first": first, "second": second}


def _ready(value: Any) -> Any:
    import jax

    return jax.block_until_ready(value)


class Session:
    """The probes of one test call: what to record around the call, and what to run after it."""

    def __init__(self, probes: dict[str, Any], program: Any) -> None:
        self.probes = probes
        self.program = program  # the loaded module's namespace, for a `build` function
        self.recorded: list[Any] = []

    @contextmanager
    def around_call(self) -> Iterator[None]:
        """Record modules and count traces while the graded function runs."""
        TRACES.reset()
        if (self.probes.get("model") or {}).get("from") == "captured":
            with RECORDER.recording() as modules:
                try:
                    yield
                finally:
                    self.recorded = list(modules)
        else:
            yield
        self.traces = TRACES.count

    def results(self, fn: Callable[..., Any], args: list[Any], arg_names: list[str], arrays: list[np.ndarray],
                budget: list[int], to_tree: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        """Run every probe; an exception in one (the submission's code raised) is that probe's error."""
        out: dict[str, Any] = {}
        state = self.probes.get("state")
        model, roots, model_error = self._model(self.probes.get("model") or {}, args)
        if model is None and roots:
            _LAST_TRACED[:] = [fn, roots]
        elif model_error is None and not self.recorded and _LAST_TRACED and _LAST_TRACED[0] is fn:
            # Nothing was built in this call: a function jitted as a whole ran its cached program (the static
            # arguments and shapes of an earlier test). Its model is the one that program's trace built.
            roots = _LAST_TRACED[1]
        # The model exists only as a traced copy: its structure is described, but it cannot be called afterwards.
        unusable = TRACED_ONLY if model is None and roots else None
        if state:
            if model_error is not None:
                out["state"] = {"error": model_error}
            else:
                built = {id(module): place for place, module in enumerate(self.recorded)}
                out["state"] = _guarded(lambda: describe(roots, bool(state.get("values")), arrays, budget,
                                                         traced=unusable is not None,
                                                         linen=linen_classes(self.program) if not roots else [],
                                                         built=built))
        if self.probes.get("retrace"):
            out["retrace"] = {"traces": int(self.traces)}
        rows_spec = self.probes.get("batch_invariance")
        if rows_spec:
            out["batch_invariance"] = _guarded(lambda: batch_rows(rows_spec, fn, args, arrays, budget, to_tree))
        grad_spec = self.probes.get("gradients")
        if grad_spec:
            if unusable is not None and grad_spec.get("wrt") != "inputs":
                out["gradients"] = {"error": unusable}
            else:
                out["gradients"] = _guarded(lambda: gradients(grad_spec, fn, args, model, arg_names, arrays, budget))
        eval_spec = self.probes.get("eval_determinism")
        if eval_spec:  # last: it switches the model to evaluation mode
            out["eval_determinism"] = ({"error": unusable} if unusable is not None else
                                       _guarded(lambda: eval_repeat(eval_spec, model, args, arrays, budget, to_tree)))
        return out

    def _model(self, spec: dict[str, Any], args: list[Any]) -> tuple[Any, Roots, str | None]:
        """(the model, the outermost modules, why there is none) per `state_checks.model`."""
        from flax import nnx

        if not spec:
            return None, [], None
        if spec.get("from") == "build":
            name = str(spec.get("build"))
            build = self.program.get(name) if isinstance(self.program, dict) else None
            if not callable(build):
                return None, [], f"no function named `{name}` is defined: the problem asks for it to return the model"
            try:
                model = build(*args)
            except BaseException as exc:  # the submission's code may raise anything
                return None, [], f"`{name}` raised {_error_text(exc)}"
            if not isinstance(model, nnx.Module):
                return None, [], f"`{name}` returned a {type(model).__name__}, not an nnx.Module"
            try:
                return model, [(model, _flat_state(model))], None
            except Exception as exc:
                return None, [], f"the model could not be inspected: {_error_text(exc)}"
        try:
            roots, traced = outermost(self.recorded)
        except Exception as exc:
            return None, [], f"the model could not be inspected: {_error_text(exc)}"
        if not roots and traced:
            return None, traced, None  # the model as traced: its structure only (nothing to call)
        return (roots[-1][0] if roots else None), roots, None


# The function whose model was last found only as a traced copy, and that copy: [fn, roots] (one program at a time).
_LAST_TRACED: list[Any] = []

TRACED_ONLY = ("the model was built only inside a transform (the function is jitted or vmapped as a whole), so it "
               "cannot be called once the function returns: build the model outside the transform, and jit the steps "
               "that use it")


def _guarded(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return run()
    except BaseException as exc:  # the submission's code ran again inside the probe and raised
        return {"error": _error_text(exc)}
