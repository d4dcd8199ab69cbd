import jax.numpy as jnp
from flax import nnx
def mha_forward(seed, x, num_heads, causal):
    mha = nnx.MultiHeadAttention(num_heads=int(num_heads), in_features=x.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    mask = nnx.make_causal_mask(jnp.ones(x.shape[:2])) if causal else None
    return mha(x, mask=mask)
