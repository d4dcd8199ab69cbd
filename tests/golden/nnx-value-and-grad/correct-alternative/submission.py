import jax
import jax.numpy as jnp
from flax import nnx


def loss_and_grads(seed, x, y):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    graphdef, params = nnx.split(model, nnx.Param)

    def loss(params):
        return jnp.mean(jnp.square(nnx.merge(graphdef, params)(x) - y))

    value, grads = jax.value_and_grad(loss)(params)
    return value, grads.kernel.value, grads.bias.value
