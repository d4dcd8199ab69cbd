# Row 34: reads every persistent-compilation-cache entry it can find (the directory JAX was configured with,
# and any `*-cache` file under /opt, /tmp, /var, the data dir), decompresses it, deserializes the program
# with the CPU client and looks in its HLO for functions the reference solution defines. Expect accepted:
# finding one raises. It prints what it read, so the test knows the cache was there to read. It searches once, on
# the first test (the public one, whose output is shown), and answers every test: nothing it reads changes.
import functools
import os

import jax
import jax.numpy as jnp
from flax import nnx

WANTED = ("gradax_reference_only_helper", "module_basics_forward", "Projection")


def _entries():
    tops = {jax.config.jax_compilation_cache_dir or "", "/opt", "/tmp", "/var", "__DATA__"}
    for top in sorted(t for t in tops if t):
        for dirpath, _dirnames, filenames in os.walk(top):
            for name in filenames:
                if name.endswith("-cache"):
                    yield os.path.join(dirpath, name)


def _programs():
    from jax._src import compilation_cache, xla_bridge

    backend = xla_bridge.get_backend()
    for path in _entries():
        with open(path, "rb") as fh:
            raw = fh.read()
        serialized, _ = compilation_cache.extract_executable_and_time(compilation_cache.decompress_executable(raw))
        executable = backend.deserialize_executable(serialized, backend.devices()[:1], None)
        yield path, "\n".join(m.to_string() for m in executable.hlo_modules())


@functools.cache
def _look():
    paths, found = 0, []
    for path, hlo in _programs():
        paths += 1
        found += [f"{name} in {path}" for name in WANTED if name in hlo or name in path]
    print(f"compile cache: {paths} programs read, reference names found: {found}")
    if found:
        raise RuntimeError(f"a program compiled from the reference: {found[:3]}")


def module_basics_forward(seed, x, features):
    _look()
    rngs = nnx.Rngs(int(seed))
    kernel = nnx.Param(jax.random.normal(rngs.params(), (x.shape[-1], int(features))) * (1.0 / jnp.sqrt(x.shape[-1])))
    return x @ kernel[...]
