# Keras's Dense default (Glorot uniform), in a module of its own.
import jax.numpy as jnp
from flax import nnx


class Dense(nnx.Module):
    def __init__(self, din, dout, *, rngs):
        self.kernel = nnx.Param(nnx.initializers.xavier_uniform()(rngs.params(), (din, dout)))
        self.bias = nnx.Param(jnp.zeros((dout,)))

    def __call__(self, x):
        return x @ self.kernel[...] + self.bias[...]


def linear_forward(seed, x, features):
    return Dense(x.shape[-1], int(features), rngs=nnx.Rngs(params=int(seed)))(x)
