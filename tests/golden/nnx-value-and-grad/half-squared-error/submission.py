import jax.numpy as jnp, optax
from flax import nnx
def loss_and_grads(seed, x, y):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    loss, g = nnx.value_and_grad(lambda m: jnp.mean(optax.l2_loss(m(x), y)))(model)
    return loss, g["kernel"][...], g["bias"][...]
