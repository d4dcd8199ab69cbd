import jax.numpy as jnp
import optax
from flax import nnx


def train_classifier(seed, x, labels, classes, lr, steps):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], 8, rngs=rngs), nnx.relu, nnx.Linear(8, int(classes), rngs=rngs))
    optimizer = nnx.Optimizer(model, optax.adam(learning_rate=lr), wrt=nnx.Param)

    def loss_fn(m):
        logits = m(x)
        log_probs = logits - jnp.log(jnp.sum(jnp.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    losses = jnp.array([step(model, optimizer) for _ in range(int(steps))])
    return losses, model(x)
