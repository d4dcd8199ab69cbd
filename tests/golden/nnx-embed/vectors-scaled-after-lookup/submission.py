import jax.numpy as jnp
from flax import nnx
def embed_tokens(seed, tokens, vocab, features):
    embed = nnx.Embed(int(vocab), int(features), rngs=nnx.Rngs(params=int(seed)))
    v = embed(tokens)
    return v * jnp.sqrt(int(features)), embed.attend(v)
