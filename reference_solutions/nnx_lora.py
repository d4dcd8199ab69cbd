"""Reference solution for nnx-lora."""

import jax
import jax.numpy as jnp
import optax
from flax import nnx


class LoraParam(nnx.Param):
    """A Param subtype, so filters can select the adapter weights and leave the base weights alone."""


class LoraLinear(nnx.Module):
    """Wraps an existing Linear: y = base(x) + x @ a @ b, with b starting at zero."""

    def __init__(self, base: nnx.Linear, rank: int, *, rngs: nnx.Rngs):
        in_features, out_features = base.kernel.shape
        self.base = base
        self.a = LoraParam(jax.random.normal(rngs.params(), (in_features, rank)) / jnp.sqrt(in_features))
        # Zero b: the wrapped model starts out computing exactly what the base model computed.
        self.b = LoraParam(jnp.zeros((rank, out_features)))

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.base(x) + x @ self.a[...] @ self.b[...]


def lora_finetune(seed, x, y, rank, lr):
    rngs = nnx.Rngs(params=int(seed))
    base = nnx.Linear(x.shape[-1], y.shape[-1], rngs=rngs)  # the "pretrained" layer
    model = LoraLinear(base, int(rank), rngs=rngs)  # model surgery: wrap it
    before = model(x)

    optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=LoraParam)

    def loss_fn(m: LoraLinear) -> jax.Array:
        return jnp.mean((m(x) - y) ** 2)

    _, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, LoraParam))(model)
    optimizer.update(model, grads)
    return before, model(x), model.base.kernel[...]
