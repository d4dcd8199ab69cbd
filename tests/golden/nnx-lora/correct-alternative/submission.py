import jax
import jax.numpy as jnp
import optax
from flax import nnx


def lora_finetune(seed, x, y, rank, lr):
    # Flax's built-in adapter: nnx.LoRA draws lora_a from the next params key and starts lora_b at zero.
    rngs = nnx.Rngs(params=int(seed))
    n_in, n_out = x.shape[-1], y.shape[-1]
    base = nnx.Linear(n_in, n_out, rngs=rngs)

    def a_init(key, shape, dtype=jnp.float32):
        return jax.random.normal(key, shape, dtype) / jnp.sqrt(n_in)

    model = nnx.LoRA(n_in, int(rank), n_out, base_module=base, a_initializer=a_init, rngs=rngs)
    before = model(x)
    optimizer = nnx.Optimizer(model, optax.sgd(lr), wrt=nnx.LoRAParam)
    grads = nnx.grad(lambda m: jnp.mean((m(x) - y) ** 2), argnums=nnx.DiffState(0, nnx.LoRAParam))(model)
    optimizer.update(model, grads)
    return before, model(x), model.base_module.kernel[...]
