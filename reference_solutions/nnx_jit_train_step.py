"""Reference solution for nnx-jit-train-step."""

import jax
import jax.numpy as jnp
import optax
from flax import nnx


@nnx.jit  # compiles once; updates to model and optimizer inside are written back to the objects
def train_step(model: nnx.Sequential, optimizer: nnx.Optimizer, x: jax.Array, labels: jax.Array) -> jax.Array:
    def loss_fn(model: nnx.Sequential) -> jax.Array:
        logits = model(x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss  # the loss of the parameters *before* this update


def train_classifier(seed, x, labels, classes, lr, steps):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(
        nnx.Linear(x.shape[-1], 8, rngs=rngs),
        nnx.relu,
        nnx.Linear(8, int(classes), rngs=rngs),
    )
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    losses = [train_step(model, optimizer, x, labels) for _ in range(int(steps))]
    return jnp.stack(losses), model(x)
