# Right module, but built and run in bfloat16 "to save memory": every value is rounded to ~2 digits.
import jax
import jax.numpy as jnp
from flax import nnx


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, *, rngs):
        kernel = jax.random.normal(rngs.params(), (in_features, out_features)) / jnp.sqrt(in_features)
        self.kernel = nnx.Param(kernel.astype(jnp.bfloat16))

    def __call__(self, x):
        return x.astype(jnp.bfloat16) @ self.kernel[...]


def module_basics_forward(seed, x, features):
    model = Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))
    return model(x)
