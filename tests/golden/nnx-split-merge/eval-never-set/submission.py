import jax
from flax import nnx
def split_merge_update(seed, x, features):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], int(features), rngs=rngs),
                           nnx.BatchNorm(int(features), momentum=0.9, rngs=rngs))
    graphdef, params, stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    @jax.jit
    def step(params, stats, x):
        m = nnx.merge(graphdef, params, stats)
        y = m(x)
        return y, nnx.state(m, nnx.BatchStat)
    y, new_stats = step(params, stats, x)
    nnx.update(model, new_stats)
    bn = model.layers[1]
    return y, bn.mean[...], bn.var[...], model(x)
