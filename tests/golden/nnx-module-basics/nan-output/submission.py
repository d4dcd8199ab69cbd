import jax.numpy as jnp

def module_basics_forward(seed, x, features):
    return jnp.full((int(features),), jnp.nan)
