# Row 11: prints 200 MB, then answers correctly. Expect accepted with a small, capped report.
import sys

import jax
import jax.numpy as jnp
from flax import nnx

CHUNK = "x" * (1024 * 1024 - 1) + "\n"


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    if int(seed) == 0:
        for _ in range(200):
            sys.stdout.write(CHUNK)
        sys.stdout.flush()
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
