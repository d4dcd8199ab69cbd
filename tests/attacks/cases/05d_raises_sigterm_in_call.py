# Row 5, by a signal: raises SIGTERM (default action: terminate) in the call, then returns the right answer.
# Expect runtime_error on both paths, the process killed by SIGTERM (see 05c).
import signal

import jax
import jax.numpy as jnp
from flax import nnx


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, *, rngs):
        key = rngs.params()
        self.kernel = nnx.Param(jax.random.normal(key, (in_features, out_features)) * (1.0 / jnp.sqrt(in_features)))

    def __call__(self, x):
        return x @ self.kernel[...]


def module_basics_forward(seed, x, features):
    signal.raise_signal(signal.SIGTERM)
    return Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))(x)
