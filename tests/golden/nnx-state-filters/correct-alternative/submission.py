import math

import jax
import jax.numpy as jnp
from flax import nnx


def state_summary(seed, in_features, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed) + 1)
    i, h, o = int(in_features), int(hidden), int(out)
    model = nnx.Sequential(
        nnx.Linear(i, h, rngs=rngs),
        nnx.BatchNorm(h, rngs=rngs),
        nnx.Dropout(0.5, rngs=rngs),
        nnx.Linear(h, o, rngs=rngs),
    )
    _, params, stats, _rest = nnx.split(model, nnx.Param, nnx.BatchStat, ...)
    count = lambda s: sum(math.prod(a.shape) for a in jax.tree.leaves(s))  # noqa: E731
    flat = jnp.concatenate([p.ravel() for p in jax.tree.leaves(params)])
    return count(params), count(stats), jnp.dot(flat, flat)
