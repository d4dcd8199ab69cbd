# The layer is built without a bias (use_bias=False): the model lacks a parameter the statement's nnx.Linear
# has. The state check names it, and the advice covers a bias left out, not only an array made in the call.
import jax.numpy as jnp, optax
from flax import nnx

def train_losses(seed, x, y, lr, steps):
    model = nnx.Linear(x.shape[-1], y.shape[-1], use_bias=False, rngs=nnx.Rngs(params=int(seed)))
    opt = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.Param)
    out = []
    for i in range(int(steps)):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        opt.update(model, grads)
        out.append(loss)
    return jnp.array(out)
