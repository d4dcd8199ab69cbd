# Row 11: prints 200 MB, then answers correctly. Expect accepted with a small, capped report.
import sys

import jax
import jax.numpy as jnp
from flax import nnx

CHUNK = "x" * (1024 * 1024 - 1) + "\n"


def module_basics_forward(seed, x, features):
    if int(seed) == 0:
        for _ in range(200):
            sys.stdout.write(CHUNK)
        sys.stdout.flush()
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = jax.random.normal(rngs.params(), (n, int(features))) * (1.0 / jnp.sqrt(n))
    return x @ kernel
