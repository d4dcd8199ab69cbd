# Row 3: an endless loop inside compiled XLA code, where Python signal handlers never run.
import jax
from jax import lax


@jax.jit
def spin(x):
    return lax.while_loop(lambda c: c[0] >= 0, lambda c: (c[0] + 1, c[1] * 1.0000001), (0, x))


def module_basics_forward(seed, x, features):
    return spin(x)[1]
