import jax, jax.numpy as jnp
from flax import nnx

def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(seed)  # the seed arrives as 0.0
    n = x.shape[-1]
    return x @ (jax.random.normal(rngs.params(), (n, int(features))) / jnp.sqrt(n))
