import jax.numpy as jnp
def layer_norm_forward(x, scale, bias):
    mean = x.mean(-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True, ddof=1)
    return (x - mean) / jnp.sqrt(var + 1e-6) * scale + bias
