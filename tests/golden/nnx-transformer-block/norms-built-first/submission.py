import jax
from flax import nnx
class Block(nnx.Module):
    def __init__(self, f, h, m, rngs):
        self.norm1 = nnx.LayerNorm(f, rngs=rngs)
        self.norm2 = nnx.LayerNorm(f, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(num_heads=h, in_features=f, decode=False, rngs=rngs)
        self.fc1 = nnx.Linear(f, m, rngs=rngs)
        self.fc2 = nnx.Linear(m, f, rngs=rngs)
    def __call__(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(nnx.gelu(self.fc1(self.norm2(x))))
def transformer_block(seed, x, num_heads, mlp_dim):
    return Block(x.shape[-1], int(num_heads), int(mlp_dim), nnx.Rngs(params=int(seed)))(x)
