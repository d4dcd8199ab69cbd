# Two-pass layernorm by hand with PyTorch's epsilon (1e-5): the example's values pass, its gradient is off by
# 6e-5 of ~0.5. The gradients stage says a constant differs, not that something blocks the gradient.
import jax.numpy as jnp

def layer_norm_forward(x, scale, bias):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + 1e-5) * scale + bias
