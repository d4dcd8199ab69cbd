import jax, jax.numpy as jnp
from flax import nnx
class Net(nnx.Module):
    def __init__(self, i, h, o, rngs):
        self.linear2 = nnx.Linear(h, o, rngs=rngs)
        self.linear1 = nnx.Linear(i, h, rngs=rngs)
        self.bn = nnx.BatchNorm(h, rngs=rngs)
        self.dropout = nnx.Dropout(0.5, rngs=rngs)
def state_summary(seed, in_features, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed) + 1)
    net = Net(int(in_features), int(hidden), int(out), rngs)
    params = nnx.state(net, nnx.Param); stats = nnx.state(net, nnx.BatchStat)
    return (sum(x.size for x in jax.tree.leaves(params)), sum(x.size for x in jax.tree.leaves(stats)),
            sum(jnp.sum(x ** 2) for x in jax.tree.leaves(params)))
