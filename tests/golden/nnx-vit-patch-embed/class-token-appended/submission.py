import jax, jax.numpy as jnp
from flax import nnx
def vit_embed(seed, images, patch, hidden):
    rngs = nnx.Rngs(params=int(seed)); b, h, w, c = images.shape; p, d = int(patch), int(hidden)
    conv = nnx.Conv(c, d, kernel_size=(p, p), strides=(p, p), padding="VALID", rngs=rngs)
    n = (h // p) * (w // p)
    pos = jax.nn.initializers.truncated_normal(stddev=0.02)(rngs.params(), (1, n + 1, d), jnp.float32)
    patches = conv(images).reshape(b, n, d)
    return jnp.concatenate([patches, jnp.zeros((b, 1, d))], axis=1) + pos
