from flax import nnx
def transformer_block(seed, x, num_heads, mlp_dim):
    rngs = nnx.Rngs(params=int(seed)); f = x.shape[-1]
    n1 = nnx.LayerNorm(f, rngs=rngs)
    attn = nnx.MultiHeadAttention(int(num_heads), f, decode=False, rngs=rngs)
    n2 = nnx.LayerNorm(f, rngs=rngs)
    mlp = nnx.Sequential(nnx.Linear(f, int(mlp_dim), rngs=rngs), nnx.gelu, nnx.Linear(int(mlp_dim), f, rngs=rngs))
    x = n1(x + attn(x))
    return n2(x + mlp(x))
