import jax.numpy as jnp
import optax
from flax import nnx

def loss_fn(model, x, y):
    return jnp.sum((model(x) - y) ** 2)

def train_losses(seed, x, y, lr, steps):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
    losses = []
    for _ in range(int(steps)):
        loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
        losses.append(loss)
        optimizer.update(model, grads)
    return jnp.array(losses)
