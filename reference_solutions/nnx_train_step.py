"""Reference solution for nnx-train-step."""

import jax
import jax.numpy as jnp
import optax
from flax import nnx


def mse(model: nnx.Linear, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((model(x) - y) ** 2)


def train_step(model: nnx.Linear, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array) -> jax.Array:
    loss, grads = nnx.value_and_grad(mse)(model, x, y)
    optimizer.update(model, grads)  # the loss was computed before this update
    return loss


def train_losses(seed, x, y, lr, steps):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
    # Eager on purpose: every test builds a new optimizer, which nnx.jit would trace and compile anew.
    losses = [train_step(model, optimizer, x, y) for _ in range(int(steps))]
    return jnp.stack(losses)
