import jax, jax.numpy as jnp
from flax import nnx
def state_summary(seed, in_features, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed) + 1)
    i, h, o = int(in_features), int(hidden), int(out)
    model = nnx.Sequential(nnx.Linear(i, h, rngs=rngs), nnx.BatchNorm(h, rngs=rngs), nnx.Dropout(0.5, rngs=rngs), nnx.Linear(h, o, rngs=rngs))
    everything = jax.tree.leaves(nnx.state(model))
    stats = jax.tree.leaves(nnx.state(model, nnx.BatchStat))
    params = jax.tree.leaves(nnx.state(model, nnx.Param))
    return sum(l.size for l in everything), sum(l.size for l in stats), sum(jnp.sum(p ** 2) for p in params)
