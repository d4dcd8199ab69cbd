"""Compile profiles: which jitted library functions and primitives a reference ran, on which shapes.

Where the time goes in a warm child: every jax operation on a shape the process has not seen costs
~11 ms (trace, lower, fetch from the persistent compilation cache), `jax.random.normal` ~50 ms. A child
that runs the same operations on zeros of the same shapes before the submission arrives fills those
in-process caches, and the submission then runs in a few milliseconds.

A profile is data only: for each top-level (eager) dispatch the trusted reference run made, either
- `{"k": "jit", "m": module, "n": name, "a": args, "kw": kwargs}`: a module-level jitted function of
  jax/flax/optax (looked up by name again in the child, never anything else), with arrays described by
  shape/dtype and static arguments by value (shapes, dtypes, axis numbers), or
- `{"k": "prim", "n": primitive name, "p": params, "a": args}`: an eagerly applied primitive,
- `{"k": "einsum", "s": subscripts, "kw": kwargs, "a": operands}`: a `jnp.einsum` (it jits a fresh wrapper per
  call, which no module attribute names), replayed as `jax.numpy.einsum(subscripts, ...)`, or
- `{"k": "cot", "a": [value]}`: a backward pass adding two cotangents of that shape (a value used twice).
Any of the first three may carry `"vjp"` (replayed as a gradient) or `"vmap"` (replayed under `jax.vmap`).
No code and no values of the reference travel; python scalars passed as data become zeros.

`record` runs in a trusted process of its own (`python -m graders.compile_profile record`, like the reference
runner), compiling into the trusted cache that no child reads (graders/trusted_cache.py); `replay`
(graders/child/profile_replay.py) runs in a pool child before its submission arrives, reading the replay cache
(`replay_cache_dir`) that `fill_replay_cache` filled by replaying the same profile in another trusted process
(`... compile_profile replay`) that loads no reference code. So the only programs a child can find on disk are
library functions and primitives compiled for zeros of the profile's shapes: none defined in a reference
solution (ATTACKS.md row 34).

The same recording goes on while the problem's known mistakes and alternative solutions run after the reference
(trusted instructor code; the mistakes run anyway for their outputs): their dispatches that the reference's did
not make are kept as the profile's `extra` entries. A fill compiles them into the replay cache too, but children
do not replay them: a warm-up stays the reference's, and a submission that makes a known mistake, or computes the
same things another way (a layernorm written out by hand), finds its programs in the persistent cache instead of
compiling them in the child (nnx-layernorm's `batch-axis` mistake: 2.0 -> 0.6 CPU-s of run; docs/performance.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from graders.cases import CaseInput, build_cases
from graders.child.profile_replay import (  # the replay half runs in the sandbox: graders/child/
    ALLOWED_MODULES,
    MAX_ENTRIES,
    configure_persistent_cache,
    generic_warmup,
    replay,
)
from graders.filelock import file_lock
from graders.jax_env import trusted_env
from graders.problem import LoadedProblem
from graders.trusted_cache import JAX_CACHE_SUFFIX, cache_env, trusted_cache_dir, use_cache_from_env
from graders.trusted_workers import WORKERS, TrustedWorkerError

# 5: replay_keys; 6: vjp; 7: no tuple subclasses; 8: vmap; 9: einsum, cot, conv; 10: extra; 11: cache keys cover the
# modules' metadata (profile_replay.configure_persistent_cache), so the replay keys of a format-10 profile name
# programs no process looks up any more.
PROFILE_FORMAT = 11
# The known mistakes' and alternatives' own dispatches a fill compiles (a child replays them only while it waits idle,
# so they do not lengthen its warm-up).
MAX_EXTRA_ENTRIES = 800
log = logging.getLogger("gradax.compile_profile")
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class RecordedProfile(NamedTuple):
    """A recording: the reference's dispatches (`entries`, replayed by every warm child before it is ready) and the
    known mistakes' and alternatives' further ones (`extra`: compiled into the replay cache, and replayed by a ready
    child only while it waits with nothing else to run: graders/child/zygote.py `_warm_while_waiting`)."""

    entries: list[dict[str, Any]]
    extra: list[dict[str, Any]]


def recorded_programs(loaded: LoadedProblem) -> list[str]:
    """What a recording runs, in this order: the reference (program 0), the known mistakes (their outputs are kept:
    graders/reference.py relies on this order), then the alternative solutions (other ways students write it)."""
    problem = loaded.problem
    return ([loaded.reference_source.decode("utf-8")] + [m.code for m in problem.known_mistakes]
            + [a.code for a in problem.alternatives])


class _ByProgram:
    """Splits the recorder's entries at the end of program 0 (the reference) for `after_program`."""

    def __init__(self, entries: list[dict[str, Any]]):
        self.entries = entries
        self.reference_count: int | None = None

    def after_program(self, index: int) -> None:
        if index == 0:
            self.reference_count = len(self.entries)

    def result(self) -> dict[str, list[dict[str, Any]]]:
        n = len(self.entries) if self.reference_count is None else self.reference_count
        return {"entries": self.entries[:min(n, MAX_ENTRIES)], "extra": self.entries[n:][:MAX_EXTRA_ENTRIES]}


class Unencodable(Exception):
    """A value that a profile cannot describe as data; the dispatch is left out of the profile."""


# ---------------------------------------------------------------- encoding (trusted side)

def _encode(value: Any, static: bool) -> Any:
    import jax
    import numpy as np

    if isinstance(value, np.generic) and not static and not isinstance(value, bool | int | float | complex):
        # A numpy scalar (`x * np.float32(0.5)`, flax's attention scaling): dispatched as a 0-d float32 array.
        return {"a": [], "d": str(value.dtype), "w": False, "np": True, "sc": True}
    if isinstance(value, jax.Array | np.ndarray):
        dtype = value.dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            impl = str(jax.random.key_impl(value))
            return {"key": list(value.shape), "impl": impl}
        return {"a": list(value.shape), "d": str(dtype), "w": bool(getattr(value, "weak_type", False)),
                "np": isinstance(value, np.ndarray)}
    if value is None:
        return {"none": 1}
    if isinstance(value, np.integer | np.floating) and static:
        # `broadcast_dimensions=(np.int64(1),)`: equal to the python number, but kept a numpy one all the same.
        return {"v": value.item(), "t": type(value.item()).__name__, "nd": str(value.dtype)}
    if isinstance(value, bool | int | float | complex):
        if static:
            if isinstance(value, complex):
                raise Unencodable("complex static")
            return {"v": value, "t": type(value).__name__}
        return {"py": type(value).__name__}
    if isinstance(value, str):
        if static:
            return {"v": value, "t": "str"}
        raise Unencodable("string argument")
    if isinstance(value, np.dtype):
        return {"dtype": str(value)}
    if isinstance(value, type) and hasattr(value, "dtype"):
        return {"dtype": str(np.dtype(value))}  # jnp.float32 and friends
    if type(value) in (tuple, list):
        return {"seq": [_encode(v, static) for v in value], "tuple": isinstance(value, tuple)}
    if isinstance(value, jax.lax.ConvDimensionNumbers):
        # Every convolution's parameters hold one (a namedtuple): its own kind, so it comes back as itself.
        return {"conv": [list(value.lhs_spec), list(value.rhs_spec), list(value.out_spec)]}
    if isinstance(value, tuple | list | dict) and type(value) not in (tuple, list, dict):
        # A namedtuple (as conv's ConvDimensionNumbers did before it had a kind of its own) would come back a
        # plain tuple that compares and hashes equal: the replay then fills jax's caches under the real
        # parameters' key with a program built for the wrong type, and the submission's own call fails
        # (AssertionError in nnx.Conv, seen on conv-lenet).
        raise Unencodable(type(value).__name__)
    if type(value) is dict and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, static) for k, v in value.items()}}
    raise Unencodable(type(value).__name__)


def _entry_for(fun: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    import inspect

    try:
        if getattr(fun, "_apply_primitive", False):
            closure = inspect.getclosurevars(fun).nonlocals
            prim, params = closure.get("prim"), closure.get("params")
            if prim is None or params is None:
                return None
            return {"k": "prim", "n": prim.name, "p": {k: _encode(v, True) for k, v in params.items()},
                    "a": [_encode(a, False) for a in args]}
        module_name = getattr(fun, "__module__", None) or ""
        if not module_name.startswith(ALLOWED_MODULES):
            return None
        module = sys.modules.get(module_name)
        jitted = _jitted_for(getattr(module, getattr(fun, "__name__", ""), None), fun)
        if jitted is None:
            return None
        info = jitted._jit_info
        static_nums = set(info.static_argnums)
        static_names = set(info.static_argnames)
        return {"k": "jit", "m": module_name, "n": fun.__name__,
                "a": [_encode(a, i in static_nums) for i, a in enumerate(args)],
                "kw": {k: _encode(v, k in static_names) for k, v in kwargs.items()}}
    except Unencodable:
        return None


def _jitted_for(attribute: Any, fun: Any) -> Any:
    """The jitted library object behind a module attribute (a jit wrapper or a `jnp.ufunc`), if it is `fun`'s."""
    if attribute is None:
        return None
    if getattr(attribute, "_fun", None) is fun:
        return attribute
    props = getattr(attribute, "_ufunc__static_props", None)  # jnp.multiply and friends are jnp.ufunc objects
    if isinstance(props, dict):
        call = props.get("call")
        if getattr(call, "_fun", None) is fun:
            return call
    return None


def _grad_trace(trace: Any) -> bool:
    """Whether `trace` is the linearization of an eager `grad`/`vjp` (directly above plain evaluation)."""
    from jax._src import core
    from jax._src.interpreters import ad

    return isinstance(trace, ad.LinearizeTrace) and isinstance(trace.parent_trace, core.EvalTrace)


def _differentiated(trace: Any, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[int]] | None:
    """The primal values of `args` and which of them carry a tangent of `trace`; None if another trace's."""
    from jax._src import core
    from jax._src.interpreters import ad

    primals, which = [], []
    for i, arg in enumerate(args):
        if isinstance(arg, ad.LinearizeTracer) and arg._trace is trace:
            primals.append(arg.primal)
            which.append(i)
        elif isinstance(arg, core.Tracer):
            return None
        else:
            primals.append(arg)
    return (tuple(primals), which) if which else None


def _batch_trace(trace: Any) -> bool:
    """Whether `trace` is an eager `jax.vmap`/`nnx.vmap` (directly above plain evaluation, no named mesh axis)."""
    from jax._src import core
    from jax._src.interpreters import batching

    return (isinstance(trace, batching.BatchTrace) and isinstance(trace.parent_trace, core.EvalTrace)
            and trace.axis_data.spmd_name is None and not trace.axis_data._ema)


def _batched(trace: Any, args: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[int | None]] | None:
    """The whole (batched) values of `args` and each one's batch axis (None: not mapped); None if another trace's."""
    from jax._src import core
    from jax._src.interpreters import batching

    values: list[Any] = []
    axes: list[int | None] = []
    for arg in args:
        if isinstance(arg, batching.BatchTracer) and arg._trace is trace:
            values.append(arg.val)
            axes.append(arg.batch_dim if isinstance(arg.batch_dim, int) else None)
        elif isinstance(arg, core.Tracer):
            return None
        else:
            values.append(arg)
            axes.append(None)
    return (tuple(values), axes) if any(a is not None for a in axes) else None


def _concrete(args: Any) -> bool:
    """No argument is traced: under an eager `vmap` or `grad` such a call (an initializer's `sqrt(scale)` inside
    `nnx.vmap`) is handed to plain evaluation and compiles there. Under a vmap it is replayed under a vmap with no
    axis mapped: replayed plainly it warmed nothing (measured on nnx-vmap-ensemble); under a grad, plainly."""
    from jax._src import core

    return not any(isinstance(leaf, core.Tracer) for leaf in _leaves(args))


def _leaves(value: Any) -> list[Any]:
    if type(value) in (tuple, list):
        return [leaf for item in value for leaf in _leaves(item)]
    if type(value) is dict:
        return [leaf for item in value.values() for leaf in _leaves(item)]
    return [value]


def _inside_autodiff() -> bool:
    """An eager dispatch made by a grad's forward or backward pass, not by the program itself.

    Its jit cache key differs from the same call made plainly (the context and name stack of the
    transformation), so replaying it plainly warms nothing: the `vjp` entries replay those passes.
    """
    from jax._src import source_info_util

    stack = str(source_info_util.current_name_stack())
    return "jvp(" in stack or "transpose(" in stack


def _is_add(fun: Any) -> bool:
    """An eagerly applied `add`: in a backward pass, the sum of two cotangents of one value used twice."""
    import inspect

    if not getattr(fun, "_apply_primitive", False):
        return False
    prim = inspect.getclosurevars(fun).nonlocals.get("prim")
    return getattr(prim, "name", None) in ("add", "add_any")


def _einsum_entry(args: tuple[Any, ...], subscripts: str | None) -> tuple[dict[str, Any], list[Any]] | None:
    """`jnp.einsum(subscripts, *operands)` as an entry (its operands still to encode), and the operands.

    jnp.einsum jits a new wrapper of its private `_einsum` on every call, so no module attribute names it: the
    replay calls `jax.numpy.einsum` with the same subscripts, which finds the same contraction path again.
    """
    from jax import lax

    if subscripts is None or len(args) != 6:
        return None
    operands, _, precision, preferred, dot_general, out_sharding = args
    if dot_general is not lax.dot_general or out_sharding is not None or not isinstance(operands, list | tuple):
        return None
    try:
        kwargs = {"precision": _encode(precision, True), "preferred_element_type": _encode(preferred, True)}
    except Unencodable:
        return None
    return {"k": "einsum", "s": subscripts, "kw": kwargs}, list(operands)


def _with_operands(entry: dict[str, Any], operands: tuple[Any, ...]) -> dict[str, Any] | None:
    """An einsum entry (`_einsum_entry`) with its operands encoded; None if one cannot be."""
    try:
        return {**entry, "a": [_encode(a, False) for a in operands]}
    except Unencodable:
        return None


def install_recorder(entries: list[dict[str, Any]], limit: int = MAX_ENTRIES) -> None:
    """Record every top-level jit dispatch that misses the in-process caches (i.e. compiles), up to `limit` entries.

    Also what an eager `jax.grad`/`nnx.grad` of the program does, one library function or primitive at a
    time: an entry with `"vjp": [argument indices]` was applied to values being differentiated (those
    indices), and is replayed as `jax.vjp` of that library function or primitive, which compiles the same
    forward programs and the same backward-pass primitives as the program's own gradient.
    """
    import jax.numpy as jnp
    from jax._src import core, pjit
    from jax._src.interpreters import ad, batching
    from jax._src.numpy import einsum as einsum_module

    original = pjit._run_python_pjit
    original_einsum = jnp.einsum
    subscripts: list[str | None] = []  # of the jnp.einsum calls under way
    original_linearize = ad.LinearizeTrace.process_primitive
    original_batching = batching.BatchTrace.process_primitive
    seen: set[str] = set()

    def add(entry: dict[str, Any] | None) -> None:
        if entry is not None and len(entries) < limit:
            key = json.dumps(entry, sort_keys=True)
            if key not in seen:
                seen.add(key)
                entries.append(entry)

    def einsum_recording(*operands: Any, **kwargs: Any) -> Any:
        subscripts.append(operands[0] if operands and isinstance(operands[0], str) else None)
        try:
            return original_einsum(*operands, **kwargs)
        finally:
            subscripts.pop()

    def record_under_trace(args: tuple[Any, ...], kwargs: dict[str, Any],
                           entry_for: Callable[[tuple[Any, ...]], dict[str, Any] | None], concrete_too: bool) -> None:
        """Record `entry_for(values)` for one dispatch of `args`, as the trace it runs under needs it replayed:
        plainly at top level (but not a grad's own forward or backward pass: `_inside_autodiff`); under an eager
        grad as a `vjp` entry (the values differentiated), under an eager vmap as a `vmap` entry (each value's
        batch axis); with `concrete_too`, a call with no traced argument under either too (`_concrete`)."""
        if core.trace_state_clean():
            if not _inside_autodiff():
                add(entry_for(args))
            return
        trace = core.trace_ctx.trace
        if any(isinstance(v, core.Tracer) for v in kwargs.values()):
            return
        if _grad_trace(trace):
            split = _differentiated(trace, args)
            if split is not None:
                entry = entry_for(split[0])
                if entry is not None and entry["k"] != "prim":  # primitives: `linearizing` records them
                    add({**entry, "vjp": split[1]})
            elif concrete_too and _concrete(args):
                add(entry_for(args))
        elif _batch_trace(trace):
            size = int(trace.axis_data.size)
            mapped = _batched(trace, args)
            if mapped is not None:
                entry = entry_for(mapped[0])
                if entry is not None and entry["k"] != "prim":  # primitives: `batching_` records them
                    add({**entry, "vmap": {"axes": mapped[1], "size": size}})
            elif concrete_too and _concrete(args):
                entry = entry_for(args)
                if entry is not None:
                    add({**entry, "vmap": {"axes": [None] * len(args), "size": size}})

    def recording(p: Any, args_flat: Any, fun: Any, args: Any, kwargs: Any) -> Any:
        if len(entries) < limit and fun is einsum_module._einsum:
            found = _einsum_entry(tuple(args), subscripts[-1] if subscripts else None)
            if found is not None:
                record_under_trace(tuple(found[1]), {}, partial(_with_operands, found[0]), concrete_too=False)
        elif len(entries) < limit:
            if core.trace_state_clean() and _inside_autodiff() and _is_add(fun) and args:
                # A backward pass adding up two cotangents: replayed as the gradient of `v * v`, whose
                # backward pass adds two cotangents of that shape the same way (a plain add warms nothing).
                try:
                    add({"k": "cot", "a": [_encode(args[0], False)]})
                except Unencodable:
                    pass
            else:
                record_under_trace(tuple(args), dict(kwargs), lambda values: _entry_for(fun, values, dict(kwargs)),
                                   concrete_too=True)
        return original(p, args_flat, fun, args, kwargs)

    def batching_(self: Any, primitive: Any, tracers: Any, params: Any, /) -> Any:
        if len(entries) < limit and primitive is not pjit.jit_p and _batch_trace(self):
            mapped = _batched(self, tuple(tracers))
            if mapped is not None:
                try:
                    add({"k": "prim", "n": primitive.name, "p": {k: _encode(v, True) for k, v in params.items()},
                         "a": [_encode(a, False) for a in mapped[0]],
                         "vmap": {"axes": mapped[1], "size": int(self.axis_data.size)}})
                except (Unencodable, TypeError):
                    pass
        return original_batching(self, primitive, tracers, params)

    def linearizing(self: Any, primitive: Any, tracers: Any, params: Any, /) -> Any:
        if len(entries) < limit and primitive is not pjit.jit_p and _grad_trace(self):
            split = _differentiated(self, tuple(tracers))
            if split is not None:
                try:
                    add({"k": "prim", "n": primitive.name, "p": {k: _encode(v, True) for k, v in params.items()},
                         "a": [_encode(a, False) for a in split[0]], "vjp": split[1]})
                except Unencodable:
                    pass
        return original_linearize(self, primitive, tracers, params)

    pjit._run_python_pjit = recording
    # Submissions and flax call `jnp.einsum`, jax.nn's attention `jax._src.numpy.einsum.einsum`: both looked up
    # at each call.
    jnp.einsum = einsum_recording
    einsum_module.einsum = einsum_recording
    ad.LinearizeTrace.process_primitive = linearizing  # type: ignore[method-assign]
    batching.BatchTrace.process_primitive = batching_  # type: ignore[method-assign]


# ---------------------------------------------------------------- cache (host side, trusted)

def profile_key(reference_key: str) -> str:
    return hashlib.sha256(f"{reference_key}:profile={PROFILE_FORMAT}".encode()).hexdigest()[:32]


def replay_cache_dir(cache_dir: Path) -> Path:
    """The persistent compilation cache the warm children read (bound read-only into the sandbox).

    Filled only by `fill_replay_cache` (library functions and primitives replayed on zeros by a trusted
    process), and apart from anything else the trusted side compiles. (`<cache>/jax`, which the reference's
    recording filled until 2026-12, is no longer read or bound.)
    """
    return cache_dir / "jax-replay"


def reference_run_env(cache_dir: Path) -> dict[str, str]:
    """The environment of a trusted reference run (outputs, recording): it compiles into the trusted cache and
    also reads what fills put in the replay cache, never the other way round (graders/trusted_cache.py)."""
    return cache_env(trusted_cache_dir(cache_dir), [replay_cache_dir(cache_dir)])


class ProfileCache:
    """Compile profiles on disk beside the reference outputs: `<cache>/reference/<id>/<key>.profile.json`."""

    def __init__(self, cache_dir: Path):
        self.directory = cache_dir / "reference"
        self.jax_cache_dir = replay_cache_dir(cache_dir)
        self._memory: dict[str, RecordedProfile] = {}

    def path(self, loaded: LoadedProblem) -> Path:
        """Where this version's profile is (or will be) stored."""
        from graders.reference import cache_key

        return self.directory / loaded.id / f"{profile_key(cache_key(loaded))}.profile.json"

    def is_stored(self, loaded: LoadedProblem) -> bool:
        """Whether this version's profile is on disk with every compiled program it needs (file checks)."""
        path = self.path(loaded)
        try:
            return self._compiled(json.loads(path.read_text())["replay_keys"])
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def get(self, loaded: LoadedProblem, cases: list[CaseInput],
            recorded: RecordedProfile | None = None) -> list[dict[str, Any]]:
        """The entries a warm child replays (`recorded`'s, below)."""
        return self.recorded(loaded, cases, recorded).entries

    def recorded(self, loaded: LoadedProblem, cases: list[CaseInput],
                 recorded: RecordedProfile | None = None) -> RecordedProfile:
        """The problem's profile, from memory or the file, else `recorded` (the trusted run that computed the reference
        outputs recorded it: graders/prepare.py), else a recording made now; the replay cache is filled for its
        entries and for the known mistakes' and alternatives' extra entries."""
        from graders.reference import cache_key

        key = profile_key(cache_key(loaded))
        if key in self._memory:
            return self._memory[key]
        with _guard:
            lock = _locks.setdefault(key, threading.Lock())
        with lock:
            if key in self._memory:
                return self._memory[key]
            path = self.path(loaded)
            with file_lock(path.with_suffix(".lock")):  # one process records; the others wait and read
                profile = self._load_or_record(loaded, cases, path, recorded)
            self._memory[key] = profile
            return profile

    def _load_or_record(self, loaded: LoadedProblem, cases: list[CaseInput], path: Path,
                        recorded: RecordedProfile | None = None) -> RecordedProfile:
        profile: RecordedProfile | None = None
        replay_keys: list[str] | None = None
        try:
            stored = json.loads(path.read_text())
            profile, replay_keys = RecordedProfile(stored["entries"], stored["extra"]), stored["replay_keys"]
        except (OSError, ValueError, KeyError, TypeError):
            profile = None
        if profile is None:
            profile = recorded if recorded is not None else record_profile(
                loaded, cases, cache_dir=self.jax_cache_dir.parent)
        if replay_keys is None or not self._compiled(replay_keys):
            # New, or the profile outlived the replay cache (wiped, or written under another data dir):
            # without its programs every warm child would compile everything again (~2.5 CPU-s instead
            # of ~0.5), so replay it again into the cache; the recording itself stays valid.
            replay_keys = fill_replay_cache(profile.entries + profile.extra, self.jax_cache_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump({"format": PROFILE_FORMAT, "problem": loaded.id, "entries": profile.entries,
                           "extra": profile.extra, "replay_keys": replay_keys}, fh)
            os.replace(tmp, path)
        return profile

    def _compiled(self, keys: list[str]) -> bool:
        """Whether every program the profile's replay compiled is still in the replay cache."""
        return all((self.jax_cache_dir / f"{name}{JAX_CACHE_SUFFIX}").is_file() for name in keys)


def record_profile(loaded: LoadedProblem, cases: list[CaseInput], timeout_s: float = 300.0,
                   cache_dir: Path | None = None) -> RecordedProfile:
    """Run the reference, then the known mistakes and alternatives, once in a trusted process (a worker's child) with
    the recorder installed.

    What it compiles comes from reference code (its own jitted functions, transforms of them) and must never
    reach a cache a warm child can read: with `cache_dir` (the data dir's cache), it compiles into the trusted
    cache (`reference_run_env`), else into none.
    """
    from graders.reference import reference_probes
    from graders.request import build_request

    # With the probes a submission is graded with (model state, transform checks), so they are warm too.
    request = build_request(loaded, cases, recorded_programs(loaded), output_budget=256 * 2**20,
                            probes=reference_probes(loaded))
    run_env = reference_run_env(cache_dir) if cache_dir is not None else {}
    status, stdout, stderr = _trusted_subcommand("record", request, run_env, timeout_s)
    if status != 0:
        raise RuntimeError(f"{loaded.id}: recording the compile profile failed: {stderr[-2000:]}")
    said = json.loads(stdout)
    return RecordedProfile(said["entries"], said["extra"])


def _trusted_subcommand(command: str, stdin: bytes, run_env: dict[str, str], timeout_s: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `graders.compile_profile <command>` (`record`, `replay`) fed `stdin`, with the
    trusted environment and `run_env`: in a child of a trusted worker (jax imported once per worker, not once per run:
    ~1 CPU-s), or, if no worker can serve it, in a process of its own."""
    scratch = Path(tempfile.mkdtemp(prefix=f"gradax-{command}-"))
    try:
        outcome = WORKERS.run_to_files(trusted_env(), command, run_env, stdin, scratch, timeout_s)
        return outcome.status, outcome.stdout, outcome.stderr
    except TrustedWorkerError as exc:
        log.warning("`%s` through a trusted worker failed (%s); running it in a process of its own", command, exc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    proc = subprocess.run(_fresh_process_argv(command), input=stdin, capture_output=True, cwd="/tmp",
                          timeout=timeout_s, env=trusted_env(**run_env))
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def _fresh_process_argv(command: str, *args: str) -> list[str]:
    """`python -m graders.compile_profile <command> [args]` in a trusted process of its own (run with `trusted_env`)."""
    return [sys.executable, "-B", "-s", "-m", "graders.compile_profile", command, *args]


def fill_replay_cache(entries: list[dict[str, Any]], replay_dir: Path, timeout_s: float = 300.0) -> list[str]:
    """Replay a profile in a trusted process that loads no reference code, and publish what it compiled.

    The replay cache is what warm children read, so it holds only programs of library functions and
    primitives run on zeros (ATTACKS.md row 34): the process runs `generic_warmup` and `replay`, nothing
    else. It compiles into a staging directory of its own, reading what earlier fills put in the replay cache
    and what the trusted reference runs compiled under the same keys (a key covers the whole module, metadata
    included: such a program is the one this process would compile; graders/trusted_cache.py), copied into the
    staging directory, so it holds every program of this profile; each new program is then moved into the replay
    cache with a rename (a child or another filler reading the shared directory could otherwise see half a file).
    Returns the cache keys of the replay's programs.
    """
    replay_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(replay_dir, 0o755)
    staging = Path(tempfile.mkdtemp(dir=replay_dir.parent, prefix=f".{replay_dir.name}-staging-"))
    try:
        reads = [replay_dir, trusted_cache_dir(replay_dir.parent)]
        status, stdout, stderr = _trusted_subcommand("replay", json.dumps(entries).encode(),
                                                     cache_env(staging, reads), timeout_s)
        if status != 0:
            raise RuntimeError(f"replaying the compile profile into the replay cache failed: {stderr[-2000:]}")
        try:
            said = json.loads(stdout)
            log.info("replayed %d entries: compiled %s programs, reused %s", len(entries), said.get("compiled"),
                     said.get("reused"), extra={"compiled": said.get("compiled"), "reused": said.get("reused")})
        except (ValueError, AttributeError):
            log.warning("the replay process said nothing readable: %r", stdout[:200])
        keys: list[str] = []
        for item in sorted(staging.iterdir()):
            if not item.name.endswith(JAX_CACHE_SUFFIX) or not item.is_file():
                continue
            keys.append(item.name[: -len(JAX_CACHE_SUFFIX)])
            target = replay_dir / item.name
            if not target.exists():
                os.chmod(item, 0o644)  # read by the sandbox's unprivileged user
                os.replace(item, target)
        return keys
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def misses_after_replay(loaded: LoadedProblem, code: str, entries: list[dict[str, Any]], replay_dir: Path,
                        keys: list[str] | None = None, timeout_s: float = 600.0) -> dict[str, Any]:
    """Trusted diagnostic (scripts/compile-misses.py, tests/test_compile_profile.py): what `code` (a reference, a
    known mistake, an alternative) compiles when it is graded on the problem's tests, with the probes a submission
    is graded with, right after a replay of `entries` as a warm child does: `misses` in a fresh trusted process,
    with the grading XLA flags (they enter every persistent-cache key), over a copy of `replay_dir` (only `keys`'
    programs if given), since what the code compiles goes into that cache and must never reach the one children
    read. Returns `misses`' JSON: replayed, misses, from_cache, run_ms, run_cpu_ms. Unsandboxed: instructor code only.
    """
    from graders.reference import reference_probes
    from graders.request import build_request

    request = build_request(loaded, build_cases(loaded.problem), [code], output_budget=2**26,
                            probes=reference_probes(loaded))
    with tempfile.TemporaryDirectory(prefix="gradax-misses-") as tmp:
        cache = Path(tmp) / "cache"
        if keys is None:
            shutil.copytree(replay_dir, cache)
        else:
            cache.mkdir()
            for key in keys:
                source = replay_dir / f"{key}{JAX_CACHE_SUFFIX}"
                if source.is_file():
                    shutil.copy2(source, cache / source.name)
        profile = Path(tmp) / "profile.json"
        profile.write_text(json.dumps(entries))
        proc = subprocess.run(_fresh_process_argv("misses", str(profile), str(cache)), input=request,
                              capture_output=True, cwd="/tmp", timeout=timeout_s, env=trusted_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{loaded.id}: the run after the replay failed:\n"
                           f"{proc.stderr.decode('utf-8', 'replace')[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def _record() -> None:
    """Trusted: read a request on stdin (`recorded_programs`), run every program on every test, print the profile:
    the reference's entries and the known mistakes' and alternatives' extra ones. The outputs are not kept."""
    from graders.child import harness

    use_cache_from_env()
    harness.import_libraries()
    generic_warmup()
    entries: list[dict[str, Any]] = []
    install_recorder(entries, MAX_ENTRIES + MAX_EXTRA_ENTRIES)
    by_program = _ByProgram(entries)
    with open(os.devnull, "wb") as outputs:
        harness.serve(harness.read_request(sys.stdin.buffer), outputs, by_program.after_program)
    sys.stdout.write(json.dumps(by_program.result()))
    sys.stdout.flush()


def _outputs_and_profile() -> None:
    """Trusted: the unsandboxed harness's `serve` of a reference request (the reference, then the known mistakes and,
    when recording, the alternatives), given GRADAX_PROFILE_OUT with the recorder on: the entries recorded while
    program 0 (the reference) ran go to that file as soon as it finished, and again with the later programs' extra
    entries after each of them.

    One process and one reference run for both halves of a preparation (graders/prepare.py), where separate
    `compute` and `record` processes each started jax and ran the reference. It compiles into the trusted cache
    when the parent gives it one (`reference_run_env`; see `record_profile`).
    """
    from graders import wire
    from graders.child import harness

    out = os.fdopen(int(os.environ.pop("GRADAX_RESULT_FD")), "wb", buffering=0)
    profile_to = os.environ.pop("GRADAX_PROFILE_OUT", "")
    use_cache_from_env()
    harness.import_libraries()
    if not profile_to:  # outputs only (a cold grader's reference): no recorder
        wire.write_message(out, {"event": "ready", "pid": os.getpid()})
        harness.serve_and_exit(harness.read_request(sys.stdin.buffer), out)
    profile_out = Path(profile_to)
    generic_warmup()
    entries: list[dict[str, Any]] = []
    install_recorder(entries, MAX_ENTRIES + MAX_EXTRA_ENTRIES)
    by_program = _ByProgram(entries)
    wire.write_message(out, {"event": "ready", "pid": os.getpid()})
    request = harness.read_request(sys.stdin.buffer)

    def after_program(index: int) -> None:
        # Written after each program, before `done` is sent: the parent stops the process on `done`.
        by_program.after_program(index)
        tmp = profile_out.with_suffix(".tmp")
        tmp.write_text(json.dumps(by_program.result()))
        os.replace(tmp, profile_out)

    harness.serve_and_exit(request, out, after_program)


def _replay_into_cache() -> None:
    """Trusted: replay the profile on stdin with the persistent cache on, exactly as a warm child does."""
    from graders.child import harness

    cache = use_cache_from_env()  # compiles into its staging directory; an earlier fill's programs are copied
    harness.import_libraries()
    entries = json.load(sys.stdin)
    generic_warmup()
    stats = replay(entries, limit=None)
    sys.stdout.write(json.dumps({"replay": stats, "compiled": cache.compiled if cache else None,
                                 "reused": cache.reused if cache else None}))
    sys.stdout.flush()


def _misses() -> None:
    """Trusted diagnostic (tests/test_compile_profile.py, scripts/compile-misses.py): replay the profile in the
    file argv[2] as a warm child does, with the persistent cache argv[3], then `serve` the request on stdin and
    print, as JSON, what jax compiled after the replay (`misses`) and how many of those the persistent cache
    served (`from_cache`). argv[3] must be a copy, never a cache children read: the request's programs (a
    reference) compile into it.
    """
    import io
    import logging
    import time

    import jax

    from graders.child import harness

    harness.import_libraries()
    configure_persistent_cache(sys.argv[3])
    compiled: list[str] = []

    class Compiles(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith("Compiling "):
                name, _, rest = message[len("Compiling "):].partition(" with global shapes and types ")
                compiled.append(name + " " + rest.split(". Argument mapping")[0].replace("ShapedArray", ""))

    log = logging.getLogger("jax._src.interpreters.pxla")
    log.addHandler(Compiles())
    log.propagate = False
    jax.config.update("jax_log_compiles", True)  # every compilation is logged: those after the replay are misses
    # Of those, the ones the persistent cache served (a known mistake's extra entries): deserialized, not compiled.
    from_cache: list[str] = []
    jax.monitoring.register_event_listener(
        lambda event, **kwargs: from_cache.append(event) if event == "/jax/compilation_cache/cache_hits" else None)
    generic_warmup()
    replayed = replay(json.loads(Path(sys.argv[2]).read_text()))
    compiled.clear()
    from_cache.clear()
    request = harness.read_request(sys.stdin.buffer)
    start, cpu = time.perf_counter(), time.process_time()
    harness.serve(request, io.BytesIO())
    sys.stdout.write(json.dumps({"replayed": replayed, "misses": compiled, "from_cache": len(from_cache),
                                 "run_ms": round((time.perf_counter() - start) * 1000),
                                 "run_cpu_ms": round((time.process_time() - cpu) * 1000)}))
    sys.stdout.flush()


SUBCOMMANDS = {"record": _record, "replay": _replay_into_cache, "outputs-and-profile": _outputs_and_profile,
               "misses": _misses}  # `python -m graders.compile_profile NAME`, or a trusted worker's child


def main() -> None:
    SUBCOMMANDS[sys.argv[1]]()


if __name__ == "__main__":
    main()
