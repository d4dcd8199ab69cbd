import jax, jax.numpy as jnp, optax
from flax import nnx
class LoraParam(nnx.Param): pass
def lora_finetune(seed, x, y, rank, lr):
    rngs = nnx.Rngs(params=int(seed)); n, r = x.shape[-1], int(rank)
    base = nnx.Linear(n, y.shape[-1], rngs=rngs)
    class M(nnx.Module):
        def __init__(self):
            self.base = base
            self.a = LoraParam(jax.random.normal(rngs.params(), (n, r)) / jnp.sqrt(n))
            self.b = LoraParam(jax.random.normal(rngs.params(), (r, y.shape[-1])) / jnp.sqrt(r))
        def __call__(self, x): return self.base(x) + x @ self.a[...] @ self.b[...]
    model = M(); before = model(x)
    opt = nnx.Optimizer(model, optax.sgd(lr), wrt=LoraParam)
    grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2), argnums=nnx.DiffState(0, LoraParam))(model)
    opt.update(model, grads)
    return before, model(x), model.base.kernel[...]
