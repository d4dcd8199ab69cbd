from flax import nnx


class Block(nnx.Module):
    def __init__(self, f, heads, hidden, *, rngs):
        self.ln1 = nnx.LayerNorm(f, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=heads, in_features=f, rngs=rngs)
        self.ln2 = nnx.LayerNorm(f, rngs=rngs)
        self.up = nnx.Linear(f, hidden, rngs=rngs)
        self.down = nnx.Linear(hidden, f, rngs=rngs)

    def __call__(self, x):
        x = x + self.attn(self.ln1(x), decode=False)
        return x + self.down(nnx.gelu(self.up(self.ln2(x))))


def transformer_block(seed, x, num_heads, mlp_dim):
    return Block(x.shape[-1], int(num_heads), int(mlp_dim), rngs=nnx.Rngs(params=int(seed)))(x)
