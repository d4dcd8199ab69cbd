"""Reference solution for nnx-transformer-block."""

import jax
from flax import nnx


class TransformerBlock(nnx.Module):
    """Pre-norm block: each sub-layer reads a normalized copy and adds its result to the stream."""

    def __init__(self, features: int, num_heads: int, mlp_dim: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(features, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads, features, decode=False, rngs=rngs)
        self.norm2 = nnx.LayerNorm(features, rngs=rngs)
        self.mlp = nnx.Sequential(
            nnx.Linear(features, mlp_dim, rngs=rngs),
            nnx.gelu,
            nnx.Linear(mlp_dim, features, rngs=rngs),
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def transformer_block(seed, x, num_heads, mlp_dim):
    block = TransformerBlock(x.shape[-1], int(num_heads), int(mlp_dim), rngs=nnx.Rngs(params=int(seed)))
    return block(x)
