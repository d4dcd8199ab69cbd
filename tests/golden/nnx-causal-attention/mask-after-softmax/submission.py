import jax, jax.numpy as jnp
from flax import nnx
def causal_attention(seed, x, num_heads):
    rngs = nnx.Rngs(params=int(seed)); h = int(num_heads)
    b, s, f = x.shape; d = f // h
    qkv_l, proj = nnx.Linear(f, 3 * f, rngs=rngs), nnx.Linear(f, f, rngs=rngs)
    q, k, v = jnp.transpose(qkv_l(x).reshape(b, s, 3, h, d), (2, 0, 3, 1, 4))
    w = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2) / jnp.sqrt(d), axis=-1)
    w = w * jnp.tril(jnp.ones((s, s)))
    return proj(jnp.transpose(w @ v, (0, 2, 1, 3)).reshape(b, s, f)), w
