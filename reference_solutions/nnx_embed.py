"""Reference solution for nnx-embed."""

import jax
from flax import nnx


def embed_tokens(seed, tokens, vocab, features):
    embed = nnx.Embed(int(vocab), int(features), rngs=nnx.Rngs(params=int(seed)))
    vectors: jax.Array = embed(tokens)
    # Weight tying: the output head reuses the embedding table, logits = vectors @ table.T.
    logits: jax.Array = embed.attend(vectors)
    return vectors, logits
