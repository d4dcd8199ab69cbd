import jax
import jax.numpy as jnp
from flax import nnx

class Count(nnx.Variable):
    pass

class CountingLinear(nnx.Module):
    def __init__(self, din, dout, *, rngs):
        self.w = nnx.Param(jax.random.uniform(jax.random.key(rngs), (din, dout)))
        self.b = nnx.Param(jnp.zeros((dout,)))
        self.count = Count(jnp.array(0, dtype=jnp.uint32))

    def __call__(self, x):
        self.count[...] += 1
        return x @ self.w[...] + self.b[...]

def stateful_linear(seed, x, features, calls):
    model = CountingLinear(x.shape[-1], int(features), rngs=int(seed))
    for _ in range(int(calls)):
        y = model(x)
    return y, model.count[...]
