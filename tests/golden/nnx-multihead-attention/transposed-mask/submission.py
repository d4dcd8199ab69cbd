import jax.numpy as jnp
from flax import nnx
def mha_forward(seed, x, num_heads, causal):
    attention = nnx.MultiHeadAttention(int(num_heads), x.shape[-1], decode=False, rngs=nnx.Rngs(params=int(seed)))
    mask = jnp.swapaxes(nnx.make_causal_mask(jnp.ones(x.shape[:2])), -1, -2) if causal else None
    return attention(x, mask=mask)
