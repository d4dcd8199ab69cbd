# Row 9, asked for at once: 8 TiB from numpy and then from XLA. Refused before any memory is used (MemoryError,
# RESOURCE_EXHAUSTED), not stopped by the limit as it grows. Expect memory_limit_exceeded all the same.
import jax.numpy as jnp
import numpy as np


def module_basics_forward(seed, x, features):
    try:
        np.ones(2**40, dtype=np.float64)
    except MemoryError:
        pass
    return jnp.ones((2**41,), dtype=jnp.float32)[: int(features)]
