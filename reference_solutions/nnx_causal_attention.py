"""Reference solution for nnx-causal-attention."""

import jax
import jax.numpy as jnp
from flax import nnx


class CausalSelfAttention(nnx.Module):
    """Multi-head self-attention where position i only sees positions <= i."""

    def __init__(self, features: int, num_heads: int, *, rngs: nnx.Rngs):
        self.num_heads = num_heads
        self.head_dim = features // num_heads
        self.qkv = nnx.Linear(features, 3 * features, rngs=rngs)
        self.proj = nnx.Linear(features, features, rngs=rngs)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        batch, seq, features = x.shape
        qkv = self.qkv(x).reshape(batch, seq, 3, self.num_heads, self.head_dim)
        q, k, v = jnp.transpose(qkv, (2, 0, 3, 1, 4))  # each (batch, heads, seq, head_dim)
        scores = q @ jnp.swapaxes(k, -1, -2) / jnp.sqrt(self.head_dim)
        causal = jnp.tril(jnp.ones((seq, seq), dtype=bool))
        # Mask before the softmax, so each row still sums to one over the allowed positions.
        weights = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
        out = jnp.transpose(weights @ v, (0, 2, 1, 3)).reshape(batch, seq, features)
        return self.proj(out), weights


def causal_attention(seed, x, num_heads):
    model = CausalSelfAttention(x.shape[-1], int(num_heads), rngs=nnx.Rngs(params=int(seed)))
    return model(x)
