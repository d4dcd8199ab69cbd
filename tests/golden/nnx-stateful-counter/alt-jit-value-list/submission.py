import jax
import jax.numpy as jnp
from flax import nnx


class Count(nnx.Variable):
    pass


class CountingLinear(nnx.Module):
    def __init__(self, din, dout, rngs):
        self.w = nnx.Param(jax.random.uniform(rngs.default(), (din, dout)))
        self.b = nnx.Param(jnp.zeros(dout))
        self.count = Count(jnp.zeros((), jnp.uint32))

    def __call__(self, x):
        self.count.value += 1  # deprecated spelling, still correct on Flax 0.12
        return x @ self.w + self.b


@nnx.jit
def call(model, x):
    return model(x)  # nnx.jit writes the updated count back into the module


def stateful_linear(seed, x, features, calls):
    model = CountingLinear(x.shape[-1], int(features), nnx.Rngs(int(seed)))
    for _ in range(int(calls)):
        y = call(model, x)
    return [y, int(model.count.value)]   # a list and a Python int are fine
