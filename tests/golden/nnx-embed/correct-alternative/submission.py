import jax.numpy as jnp
from flax import nnx


def embed_tokens(seed, tokens, vocab, features):
    table = nnx.Embed(num_embeddings=int(vocab), features=int(features), rngs=nnx.Rngs(int(seed))).embedding[...]
    vectors = jnp.take(table, tokens, axis=0)
    return vectors, jnp.einsum("bsf,vf->bsv", vectors, table)
