import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


@nnx.jit
def train_step(model, optimizer, x, y):
    def loss_fn(model):
        return ((model(x) - y) ** 2).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def train_losses(seed, x, y, lr, steps):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(int(seed)))
    optimizer = nnx.Optimizer(model, optax.sgd(learning_rate=lr), wrt=nnx.Param)
    return np.array([float(train_step(model, optimizer, x, y)) for _ in range(int(steps))])
