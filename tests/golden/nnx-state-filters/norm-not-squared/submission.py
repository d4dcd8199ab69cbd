import jax, jax.numpy as jnp
from flax import nnx
class Net(nnx.Module):
    def __init__(self, i, h, o, rngs):
        self.linear1 = nnx.Linear(i, h, rngs=rngs)
        self.bn = nnx.BatchNorm(h, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
        self.linear2 = nnx.Linear(h, o, rngs=rngs)
def state_summary(seed, in_features, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed) + 1)
    net = Net(int(in_features), int(hidden), int(out), rngs)
    params = nnx.state(net, nnx.Param); stats = nnx.state(net, nnx.BatchStat)
    flat = jnp.concatenate([x.ravel() for x in jax.tree.leaves(params)])
    return flat.size, sum(x.size for x in jax.tree.leaves(stats)), jnp.linalg.norm(flat)
