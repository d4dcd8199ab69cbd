# Row 3: an endless loop inside compiled XLA code, where Python signal handlers never run. The counter is
# clamped at 0 so it never wraps negative (a plain `+ 1` ends after 2^31 steps, fast enough to finish).
import jax
import jax.numpy as jnp
from jax import lax


@jax.jit
def spin(x):
    return lax.while_loop(lambda c: c[0] >= 0, lambda c: (jnp.maximum(c[0] + 1, 0), c[1] * 1.0000001), (0, x))


def module_basics_forward(seed, x, features):
    return spin(x)[1]
