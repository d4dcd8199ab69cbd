import jax, jax.numpy as jnp
from flax import nnx

class M(nnx.Module):
    def __init__(self, din, dout, *, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (din, dout)) / jnp.sqrt(dout))
    def __call__(self, x):
        return x @ self.kernel[...]

def module_basics_forward(seed, x, features):
    return M(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))(x)
