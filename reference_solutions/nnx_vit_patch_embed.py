"""Reference solution for nnx-vit-patch-embed."""

import jax
import jax.numpy as jnp
from flax import nnx


class PatchEmbedding(nnx.Module):
    """Images to a token sequence: one token per patch, a class token in front, positions added."""

    def __init__(self, height: int, width: int, channels: int, patch: int, hidden: int, *, rngs: nnx.Rngs):
        num_patches = (height // patch) * (width // patch)
        # kernel = stride = patch size, no padding: each output pixel sees exactly one patch.
        self.patch_embeddings = nnx.Conv(
            channels, hidden, kernel_size=(patch, patch), strides=(patch, patch), padding="VALID", rngs=rngs
        )
        init = jax.nn.initializers.truncated_normal(stddev=0.02)
        self.position_embeddings = nnx.Param(init(rngs.params(), (1, num_patches + 1, hidden), jnp.float32))
        self.cls_token = nnx.Param(jnp.zeros((1, 1, hidden)))

    def __call__(self, x: jax.Array) -> jax.Array:
        patches = self.patch_embeddings(x)
        batch = patches.shape[0]
        patches = patches.reshape(batch, -1, patches.shape[-1])  # row-major: left to right, top to bottom
        cls = jnp.tile(self.cls_token[...], (batch, 1, 1))
        tokens = jnp.concatenate([cls, patches], axis=1)  # the class token goes first
        return tokens + self.position_embeddings[...]


def vit_embed(seed, images, patch, hidden):
    _, height, width, channels = images.shape
    model = PatchEmbedding(height, width, channels, int(patch), int(hidden), rngs=nnx.Rngs(params=int(seed)))
    return model(images)
