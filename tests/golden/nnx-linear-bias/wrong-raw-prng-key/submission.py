import jax, jax.numpy as jnp
from flax import nnx

def linear_forward(seed, x, features):
    key = jax.random.key(int(seed))
    w = nnx.initializers.lecun_normal()(key, (x.shape[-1], int(features)))
    b = jnp.zeros((int(features),))
    return x @ w + b
