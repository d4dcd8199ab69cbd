"""Reference solution for nnx-value-and-grad."""

import jax
import jax.numpy as jnp
from flax import nnx


def loss_and_grads(seed, x, y):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))

    def loss_fn(model: nnx.Linear) -> jax.Array:
        return jnp.mean((model(x) - y) ** 2)  # mean over every element: batch and outputs

    loss, grads = nnx.value_and_grad(loss_fn)(model)  # grads: an nnx.State shaped like the params
    return loss, grads["kernel"][...], grads["bias"][...]
