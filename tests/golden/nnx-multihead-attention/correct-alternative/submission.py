from flax import nnx


def mha_forward(seed, x, num_heads, causal):
    attention = nnx.MultiHeadAttention(int(num_heads), x.shape[-1], rngs=nnx.Rngs(int(seed)))
    return attention(x, x, is_causal=bool(causal), decode=False)
