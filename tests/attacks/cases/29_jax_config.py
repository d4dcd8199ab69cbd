# Row 29: changes global JAX configuration (x64, platform, compilation cache on host paths), then
# answers in float32. Expect accepted; the next submission and the reference are unaffected.
import jax
import jax.numpy as jnp
from flax import nnx

for name, value in (("jax_enable_x64", True), ("jax_platforms", "cpu"), ("jax_default_matmul_precision", "bfloat16"),
                    ("jax_compilation_cache_dir", "__DATA__/__MARKER__-jaxcache"),
                    ("jax_persistent_cache_min_compile_time_secs", 0.0)):
    try:
        jax.config.update(name, value)
    except Exception:
        pass


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features), dtype=jnp.float32) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return (x.astype(jnp.float32) @ kernel).astype(jnp.float32)
