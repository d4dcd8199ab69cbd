import jax, jax.numpy as jnp
from flax import nnx

class M(nnx.Module):
    def __init__(self, din, dout, *, rngs):
        # PyTorch layout (out, in)
        self.weight = nnx.Param(jax.random.normal(rngs.params(), (dout, din)) * (1.0 / jnp.sqrt(din)))
    def __call__(self, x):
        return self.weight[...] @ x

def module_basics_forward(seed, x, features):
    return M(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))(x)
