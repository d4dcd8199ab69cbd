"""Reference solution for nnx-state-filters."""

import jax
import jax.numpy as jnp
from flax import nnx


class Net(nnx.Module):
    def __init__(self, in_features: int, hidden: int, out: int, *, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(in_features, hidden, rngs=rngs)
        self.bn = nnx.BatchNorm(hidden, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)  # keeps its own RNG state in the model
        self.linear2 = nnx.Linear(hidden, out, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear2(self.dropout(nnx.relu(self.bn(self.linear1(x)))))


def state_summary(seed, in_features, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed) + 1)
    model = Net(int(in_features), int(hidden), int(out), rngs=rngs)
    params = nnx.state(model, nnx.Param)  # trainable weights only
    stats = nnx.state(model, nnx.BatchStat)  # running mean and variance
    param_count = sum(leaf.size for leaf in jax.tree.leaves(params))
    stat_count = sum(leaf.size for leaf in jax.tree.leaves(stats))
    sq_norm = sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(params))
    return jnp.array(param_count), jnp.array(stat_count), sq_norm
