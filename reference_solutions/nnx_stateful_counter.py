"""Reference solution for nnx-stateful-counter."""

import jax
import jax.numpy as jnp
from flax import nnx


class Count(nnx.Variable):
    """A non-trainable state variable: optimizers filtering on nnx.Param leave it alone."""


class CountingLinear(nnx.Module):
    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
        self.w = nnx.Param(jax.random.uniform(rngs(), (in_features, out_features)))
        self.b = nnx.Param(jnp.zeros((out_features,)))
        self.count = Count(jnp.array(0, dtype=jnp.uint32))

    def __call__(self, x: jax.Array) -> jax.Array:
        self.count[...] += 1
        return x @ self.w[...] + self.b[...]


def stateful_linear(seed, x, features, calls):
    model = CountingLinear(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))
    y = None
    for _ in range(int(calls)):
        y = model(x)
    return y, model.count[...]
