"""Reference solution for nnx-multihead-attention."""

import jax
import jax.numpy as jnp
from flax import nnx


def mha_forward(seed, x, num_heads, causal):
    attention = nnx.MultiHeadAttention(
        num_heads=int(num_heads),
        in_features=x.shape[-1],
        decode=False,  # no autoregressive cache: the whole sequence is processed at once
        rngs=nnx.Rngs(params=int(seed)),
    )
    mask = nnx.make_causal_mask(jnp.ones(x.shape[:2])) if causal else None
    out: jax.Array = attention(x, mask=mask)  # self-attention: keys and values default to x
    return out
