import jax, jax.numpy as jnp

def module_basics_forward(seed, x, features):
    key = jax.random.PRNGKey(int(seed))
    n = x.shape[-1]
    w = jax.random.normal(key, (n, int(features))) * (1 / jnp.sqrt(n))
    return x @ w
