# Right losses, but the jitted step is created anew inside the loop: every step traces and compiles.
import jax.numpy as jnp
import optax
from flax import nnx


def train_classifier(seed, x, labels, classes, lr, steps):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], 8, rngs=rngs), nnx.relu, nnx.Linear(8, int(classes), rngs=rngs))
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    losses = []
    for _ in range(int(steps)):
        @nnx.jit
        def train_step(model, optimizer):
            def loss_fn(model):
                return optax.softmax_cross_entropy_with_integer_labels(model(x), labels).mean()
            loss, grads = nnx.value_and_grad(loss_fn)(model)
            optimizer.update(model, grads)
            return loss
        losses.append(train_step(model, optimizer))
    return jnp.stack(losses), model(x)
