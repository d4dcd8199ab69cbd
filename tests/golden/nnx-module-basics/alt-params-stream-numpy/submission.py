import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class Kernel(nnx.Module):
    def __init__(self, din, dout, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (din, dout)) / jnp.sqrt(din))

    def __call__(self, x):
        return jnp.dot(x, self.kernel.get_value())


def module_basics_forward(seed, x, features):
    # a named params stream gives the same first key as a positional seed
    model = Kernel(x.shape[-1], int(features), nnx.Rngs(params=int(seed)))
    return np.asarray(model(x))
