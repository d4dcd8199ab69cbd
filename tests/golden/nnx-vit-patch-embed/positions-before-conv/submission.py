import jax, jax.numpy as jnp
from flax import nnx

class PE(nnx.Module):
    def __init__(self, H, W, C, p, h, rngs):
        n = (H // p) * (W // p)
        self.pos = nnx.Param(nnx.initializers.truncated_normal(stddev=0.02)(rngs.params(), (1, n + 1, h)))
        self.proj = nnx.Conv(C, h, (p, p), strides=(p, p), padding="VALID", rngs=rngs)
        self.cls = nnx.Param(jnp.zeros((1, 1, h)))
    def __call__(self, x):
        t = self.proj(x); B = t.shape[0]
        t = t.reshape(B, -1, t.shape[-1])
        return jnp.concatenate([jnp.repeat(self.cls[...], B, axis=0), t], axis=1) + self.pos[...]
def vit_embed(seed, images, patch, hidden):
    B, H, W, C = images.shape
    return PE(H, W, C, int(patch), int(hidden), nnx.Rngs(params=int(seed)))(images)
