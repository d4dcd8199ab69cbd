import jax.numpy as jnp
import optax
from flax import nnx

def loss_fn(model, x, y):
    return jnp.mean((model(x) - y) ** 2)

def train_losses(seed, x, y, lr, steps):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
    losses = []
    for _ in range(int(steps)):
        grads = nnx.grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)
        losses.append(loss_fn(model, x, y))
    return jnp.array(losses)
