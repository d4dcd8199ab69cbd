"""The reference jitted as a whole (seed and features static): correct, and its model is built inside the trace."""

import jax
import jax.numpy as jnp
from flax import nnx


class Projection(nnx.Module):
    """One kernel, no bias: the smallest useful NNX module."""

    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
        key = rngs.params()
        self.kernel = nnx.Param(jax.random.normal(key, (in_features, out_features)) * (1.0 / jnp.sqrt(in_features)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.kernel[...]


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    model = Projection(x.shape[-1], int(features), rngs=rngs)
    return model(x)


module_basics_forward = jax.jit(module_basics_forward, static_argnums=(0, 2))
