import jax
import jax.numpy as jnp
from flax import nnx


def causal_attention(seed, x, num_heads):
    rngs = nnx.Rngs(params=int(seed))
    b, s, f = x.shape
    h = int(num_heads)
    d = f // h
    qkv_layer = nnx.Linear(f, 3 * f, rngs=rngs)
    out_layer = nnx.Linear(f, f, rngs=rngs)
    qkv = qkv_layer(x)
    q, k, v = (qkv[..., i * f:(i + 1) * f].reshape(b, s, h, d) for i in range(3))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) * d ** -0.5
    allowed = jnp.arange(s)[:, None] >= jnp.arange(s)[None, :]
    weights = jax.nn.softmax(jnp.where(allowed, scores, -1e9), axis=-1)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, s, f)
    return out_layer(out), weights
