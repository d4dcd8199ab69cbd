import jax, jax.numpy as jnp
from flax import nnx


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, key):
        self.kernel = nnx.Param(jax.random.normal(key, (in_features, out_features)) * (1 / jnp.sqrt(in_features)))

    def __call__(self, x):
        return x @ self.kernel[...]


def module_basics_forward(seed, x, features):
    key = jax.random.PRNGKey(int(seed))
    return Projection(x.shape[-1], int(features), key)(x)
