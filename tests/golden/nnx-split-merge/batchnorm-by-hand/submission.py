import jax, jax.numpy as jnp
from flax import nnx
def split_merge_update(seed, x, features):
    rngs = nnx.Rngs(params=int(seed))
    lin = nnx.Linear(x.shape[-1], int(features), rngs=rngs)
    h = lin(x)
    m = h.mean(0); v = h.var(0, ddof=1)
    y = (h - m) / jnp.sqrt(h.var(0) + 1e-5)
    mean = 0.1 * m; var = 0.9 + 0.1 * v
    y_eval = (h - mean) / jnp.sqrt(var + 1e-5)
    return y, mean, var, y_eval
