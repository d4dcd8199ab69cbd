"""Replaying a compile profile (graders/compile_profile.py records it): runs in a pool child, in the sandbox.

Each profiled dispatch is run on zeros before the submission arrives, so the child's in-process caches
are warm. A profile is data only: jitted library functions of jax/flax/optax named by module and name, and
primitives named by name; nothing else is ever called. The trusted side also runs it, to fill the replay
cache (graders/compile_profile.py `fill_replay_cache`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

MAX_ENTRIES = 400
# What a grading process keeps of its own compilations (serialized, compressed programs), at most.
OWN_PROGRAMS_BYTES = 64 * 2**20
ALLOWED_MODULES = ("jax.", "jax", "flax.", "optax.", "jaxlib.")


def configure_persistent_cache(cache_dir: str) -> None:
    """Use JAX's persistent compilation cache for every compilation, however small."""
    import jax

    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # Otherwise XLA's autotune-cache path (inside the cache dir) enters every key, and the trusted writer
    # and the sandboxed readers, which see the directory at different paths, never share an entry.
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")
    # A program's key covers all of its module, metadata too, and the metadata holds no file or line: only the names
    # jax gives ops (`jit(add)/add`). So a key names one module byte for byte, wherever in which file the code that
    # dispatched it sits, and a fill may take a program the trusted reference run compiled for the same key: it is
    # what the fill would compile itself (graders/trusted_cache.py). Cheaper too: no stripping pass per key.
    jax.config.update("jax_traceback_in_locations_limit", 0)
    jax.config.update("jax_compilation_cache_include_metadata_in_key", True)


def use_read_only_cache(cache_dir: str) -> None:
    """A sandboxed process (the zygote, a cold harness): compile through the replay cache, mounted read-only on
    purpose (only trusted processes write it); what the process compiles itself stays in its memory (`OwnPrograms`).
    The warning filter stays for a store that fails all the same (JAX would warn into the submission's stderr).
    Config only: the backend stays unstarted."""
    import warnings

    warnings.filterwarnings("ignore", message="Error writing persistent compilation cache entry")
    configure_persistent_cache(cache_dir)
    keep_own_programs()


class OwnPrograms:
    """JAX's persistent-cache interface (`get`/`put`, as jax._src.lru_cache.LRUCache) for a sandboxed process: reads
    go to the read-only replay cache (`base`), and what this process compiles itself is kept here, in its memory.

    A submission that jits or scans a function it defines inside the function under test gets a new closure every
    test, so jax's in-memory caches (keyed on the function) miss and the same program was compiled again for every
    test of the same shapes: nnx-scan-layers' six tests compiled its scan six times (3 distinct), nnx-jit-train-step's
    six compiled its step six times (2 distinct), 50-250 ms each. The persistent cache is keyed on the program itself
    (`configure_persistent_cache`), so a repeat is a hit here. Only this process's own compilations are kept, and
    they die with it: a child never sees another's, nor anything a trusted process compiled beyond the replay cache
    it already reads. Bounded by `limit` bytes; past it, nothing more is kept."""

    def __init__(self, base: Any, limit: int = OWN_PROGRAMS_BYTES):
        self.base = base
        self.limit = limit
        self.kept: dict[str, bytes] = {}
        self.kept_bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self.kept.get(key)
        if value is not None or self.base is None:
            return value
        found: bytes | None = self.base.get(key)
        return found

    def put(self, key: str, value: bytes) -> None:
        """Called by JAX with what it compiled after `get` missed (never written to the read-only directory)."""
        with self._lock:
            if key in self.kept or self.kept_bytes + len(value) > self.limit:
                return
            self.kept[key] = value
            self.kept_bytes += len(value)


def keep_own_programs(limit: int = OWN_PROGRAMS_BYTES) -> OwnPrograms:
    """Put an `OwnPrograms` in front of the persistent cache configured for this process; before its first
    compilation (the zygote's children inherit it empty: the zygote never starts the backend)."""
    from jax._src import compilation_cache

    compilation_cache._initialize_cache()  # the read-only directory's file cache, as jax would make it lazily
    layer = OwnPrograms(compilation_cache._cache, limit)
    install_persistent_cache(layer)
    return layer


def install_persistent_cache(cache: Any) -> None:
    """Make `cache` (JAX's `get`/`put` interface, duck-typed) what this process's compilations read and write from now
    on: what `compilation_cache._get_cache` returns (jax 0.10.2, pinned). The one place that touches jax's private
    cache state (graders/trusted_cache.py `use_cache` calls it too)."""
    from jax._src import compilation_cache

    with compilation_cache._cache_initialized_mutex:
        compilation_cache._cache = cache
        compilation_cache._cache_initialized = True


def _primitives() -> dict[str, Any]:
    from jax._src import core

    found: dict[str, Any] = {}
    for name, module in list(sys.modules.items()):
        if not name.startswith("jax._src") or module is None:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, core.Primitive):
                found.setdefault(value.name, value)
    return found


def _decode(spec: Any) -> Any:
    import jax
    import numpy as np

    if "a" in spec and "d" in spec:
        zeros = np.zeros(spec["a"], dtype=spec["d"])
        if spec.get("sc"):
            return zeros[()]  # a numpy scalar, e.g. np.float32(0)
        if spec.get("np"):
            return zeros
        placed = jax.device_put(zeros)
        if spec.get("w"):
            return _weakly_typed(placed)
        return placed
    if "key" in spec:
        impl = spec.get("impl", "fry")
        impl_name = {"fry": "threefry2x32", "rbg": "rbg", "urbg": "unsafe_rbg"}.get(impl, impl)
        data_shape = {"threefry2x32": (2,), "rbg": (4,), "unsafe_rbg": (4,)}.get(impl_name, (2,))
        data = np.zeros(tuple(spec["key"]) + data_shape, dtype=np.uint32)
        return jax.random.wrap_key_data(jax.device_put(data), impl=impl_name)
    if "conv" in spec:
        lhs, rhs, out = (tuple(int(v) for v in part) for part in spec["conv"])
        return jax.lax.ConvDimensionNumbers(lhs, rhs, out)
    if "none" in spec:
        return None
    if "py" in spec:
        return {"int": 0, "float": 0.0, "bool": False, "complex": 0j}[spec["py"]]
    if "v" in spec:
        value = {"int": int, "float": float, "bool": bool, "str": str}[spec["t"]](spec["v"])
        if "nd" in spec:
            return np.dtype(spec["nd"]).type(value)  # a numpy scalar parameter (np.int64(1))
        return value
    if "dtype" in spec:
        return np.dtype(spec["dtype"])
    if "seq" in spec:
        items = [_decode(s) for s in spec["seq"]]
        return tuple(items) if spec["tuple"] else items
    if "dict" in spec:
        return {k: _decode(v) for k, v in spec["dict"].items()}
    raise ValueError(f"unknown spec {spec!r}")


def _weakly_typed(placed: Any) -> Any:
    """The same buffer as a weakly typed array, like `1.0 / jnp.sqrt(n)` in the recorded run.

    Not a python number: jit dispatches and lowers python scalars and arrays separately, so warming
    with `0.0` left every `x * scale` of the submission to compile again (~10 ms each).
    """
    from jax._src import array, core

    aval = core.ShapedArray(placed.shape, placed.dtype, weak_type=True)
    return array.ArrayImpl(aval, placed.sharding, placed._arrays, committed=False)


def _vjp(call: Any, args: list[Any], differentiated: list[int]) -> Any:
    """What a gradient does with `call`: linearize it in the differentiated arguments, then pull back zeros."""
    import jax
    import numpy as np

    def partial(*values: Any) -> Any:
        full = list(args)
        for index, value in zip(differentiated, values, strict=True):
            full[index] = value
        return call(*full)

    out, pullback = jax.vjp(partial, *[args[i] for i in differentiated])

    def cotangent(leaf: Any) -> Any:
        kind = np.dtype(leaf.dtype).kind
        dtype = leaf.dtype if kind in "fc" else jax.dtypes.float0
        return jax.device_put(np.zeros(leaf.shape, dtype)) if kind in "fc" else np.zeros(leaf.shape, dtype)

    return pullback(jax.tree.map(cotangent, out))


def _cotangent_sum(value: Any) -> Any:
    """A backward pass that adds two cotangents shaped like `value` (`v` is used twice in `v * v`)."""
    import jax

    out, pullback = jax.vjp(lambda v: v * v, value)
    return pullback(out)


def generic_warmup() -> None:
    """Start the backend with one tiny computation (the trusted recorder runs it too, so it is cached)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.block_until_ready(jnp.asarray(np.zeros(3, np.float32)) + 1.0)


def replay(entries: list[dict[str, Any]], limit: int | None = MAX_ENTRIES,
           stop: Callable[[], bool] | None = None) -> dict[str, float]:
    """Run each profiled dispatch on zeros (the first `limit`; all with None: a trusted fill of the replay cache);
    failures are ignored (a warm-up never fails a child). With `stop`, asked before each entry: end there when it
    says so (a ready child's request arrived)."""
    import functools
    import importlib

    import jax

    start = time.perf_counter()
    prims: dict[str, Any] | None = None
    ok = failed = 0
    for entry in entries[:limit]:
        if stop is not None and stop():
            break
        try:
            call: Any
            if entry["k"] == "cot":
                jax.block_until_ready(_cotangent_sum(_decode(entry["a"][0])))
                ok += 1
                continue
            if entry["k"] == "einsum":
                kwargs = {k: _decode(v) for k, v in entry["kw"].items()}
                call = functools.partial(jax.numpy.einsum, str(entry["s"]), **kwargs)
            elif entry["k"] == "jit":
                if not str(entry["m"]).startswith(ALLOWED_MODULES):
                    continue
                fn = getattr(importlib.import_module(entry["m"]), entry["n"])
                if not hasattr(fn, "_fun") and not hasattr(fn, "_ufunc__static_props"):
                    continue  # only jitted library functions, nothing else is ever called by name
                kwargs = {k: _decode(v) for k, v in entry["kw"].items()}
                call = functools.partial(fn, **kwargs)
            else:
                if prims is None:
                    prims = _primitives()
                prim = prims.get(entry["n"])
                if prim is None:
                    continue
                call = functools.partial(prim.bind, **{k: _decode(v) for k, v in entry["p"].items()})
            args = [_decode(a) for a in entry["a"]]
            if entry.get("vjp"):
                result = _vjp(call, args, entry["vjp"])
            elif entry.get("vmap"):
                axes = entry["vmap"]
                result = jax.vmap(call, in_axes=tuple(axes["axes"]), axis_size=int(axes["size"]))(*args)
            else:
                result = call(*args)
            jax.block_until_ready(result)
            ok += 1
        except Exception:
            failed += 1
    return {"replayed": ok, "failed": failed, "ms": round((time.perf_counter() - start) * 1000, 1)}
