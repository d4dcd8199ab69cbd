# The module computes the right numbers, but its kernel is a plain array: no optimizer would train it.
import jax
import jax.numpy as jnp
from flax import nnx


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, *, rngs):
        key = rngs.params()
        self.kernel = jax.random.normal(key, (in_features, out_features)) * (1.0 / jnp.sqrt(in_features))

    def __call__(self, x):
        return x @ self.kernel


def module_basics_forward(seed, x, features):
    model = Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))
    return model(x)
