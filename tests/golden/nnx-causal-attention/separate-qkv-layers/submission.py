import jax, jax.numpy as jnp
from flax import nnx
def causal_attention(seed, x, num_heads):
    rngs = nnx.Rngs(params=int(seed)); h = int(num_heads)
    b, s, f = x.shape; d = f // h
    ql = nnx.Linear(f, f, rngs=rngs); kl = nnx.Linear(f, f, rngs=rngs); vl = nnx.Linear(f, f, rngs=rngs)
    proj = nnx.Linear(f, f, rngs=rngs)
    q, k, v = (l(x).reshape(b, s, h, d).transpose(0, 2, 1, 3) for l in (ql, kl, vl))
    sc = q @ k.swapaxes(-1, -2) / jnp.sqrt(d)
    sc = jnp.where(jnp.tril(jnp.ones((s, s), bool)), sc, -jnp.inf)
    w = jax.nn.softmax(sc, -1)
    o = (w @ v).transpose(0, 2, 1, 3).reshape(b, s, f)
    return proj(o), w
