from flax import nnx
def embed_tokens(seed, tokens, vocab, features):
    rngs = nnx.Rngs(params=int(seed))
    embed = nnx.Embed(int(vocab), int(features), rngs=rngs)
    head = nnx.Linear(int(features), int(vocab), use_bias=False, rngs=rngs)
    vectors = embed(tokens)
    return vectors, head(vectors)
