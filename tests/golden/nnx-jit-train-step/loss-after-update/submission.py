import jax.numpy as jnp, optax
from flax import nnx
def train_classifier(seed, x, labels, classes, lr, steps):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], 8, rngs=rngs), nnx.relu, nnx.Linear(8, int(classes), rngs=rngs))
    opt = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)
    loss_fn = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(x), labels).mean()
    @nnx.jit
    def step(model, opt):
        g = nnx.grad(loss_fn)(model); opt.update(model, g); return loss_fn(model)
    losses = [step(model, opt) for _ in range(int(steps))]
    return jnp.stack(losses), model(x)
