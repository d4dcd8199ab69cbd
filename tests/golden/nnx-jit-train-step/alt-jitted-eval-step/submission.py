# The Flax tutorials' shape: a jitted train_step and a jitted eval step (here predict), each traced once per call.
# Two jitted functions traced once each are no retrace (the check counts traces per jitted function).
import jax, jax.numpy as jnp, optax
from flax import nnx

@nnx.jit
def train_step(model, optimizer, x, labels):
    def loss_fn(model):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), labels).mean()
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

@nnx.jit
def predict(model, x):
    return model(x)

def train_classifier(seed, x, labels, classes, lr, steps):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], 8, rngs=rngs), nnx.relu, nnx.Linear(8, int(classes), rngs=rngs))
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    losses = [train_step(model, optimizer, x, labels) for _ in range(int(steps))]
    return jnp.stack(losses), predict(model, x)
