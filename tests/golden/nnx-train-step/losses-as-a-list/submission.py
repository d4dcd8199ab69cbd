import jax.numpy as jnp, optax
from flax import nnx
def train_losses(seed, x, y, lr, steps):
    model = nnx.Linear(x.shape[-1], y.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    opt = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
    losses = []
    for _ in range(int(steps)):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        opt.update(model, grads)
        losses.append(float(loss))
    return losses
