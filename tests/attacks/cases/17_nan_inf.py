# Row 17: returns NaN and Inf of the right shape. Expect wrong_answer.
import jax.numpy as jnp


def module_basics_forward(seed, x, features):
    out = jnp.full((int(features),), jnp.nan)
    return out.at[0].set(jnp.inf)
