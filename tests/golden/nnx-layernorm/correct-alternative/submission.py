import jax.numpy as jnp


def layer_norm_forward(x, scale, bias):
    centered = x - jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(centered * centered, axis=-1, keepdims=True)
    return centered * jnp.reciprocal(jnp.sqrt(var + 1e-6)) * scale + bias
