# Other names, the same model: a Conv and two Params (the state check compares types and shapes, not names).
import jax.numpy as jnp
from flax import nnx


class Embed(nnx.Module):
    def __init__(self, h, w, c, p, d, *, rngs):
        n = (h // p) * (w // p)
        self.proj = nnx.Conv(c, d, kernel_size=(p, p), strides=(p, p), padding="VALID", rngs=rngs)
        self.pos = nnx.Param(nnx.initializers.truncated_normal(stddev=0.02)(rngs.params(), (1, n + 1, d)))
        self.cls = nnx.Param(jnp.zeros((1, 1, d)))

    def __call__(self, images):
        b = images.shape[0]
        patches = self.proj(images)
        patches = patches.reshape(b, -1, patches.shape[-1])
        cls = jnp.broadcast_to(self.cls[...], (b, 1, self.cls.shape[-1]))
        return jnp.concatenate([cls, patches], axis=1) + self.pos[...]


def vit_embed(seed, images, patch, hidden):
    _, h, w, c = images.shape
    return Embed(h, w, c, int(patch), int(hidden), rngs=nnx.Rngs(params=int(seed)))(images)
