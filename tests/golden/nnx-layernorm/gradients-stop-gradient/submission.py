# "The statistics are constants per row, so no gradient needs to flow through them": right values,
# wrong gradient. Only the gradient check can tell.
import jax
import jax.numpy as jnp


def layer_norm_forward(x, scale, bias):
    mean = jax.lax.stop_gradient(jnp.mean(x, axis=-1, keepdims=True))
    var = jax.lax.stop_gradient(jnp.mean((x - mean) ** 2, axis=-1, keepdims=True))
    return (x - mean) / jnp.sqrt(var + 1e-6) * scale + bias
