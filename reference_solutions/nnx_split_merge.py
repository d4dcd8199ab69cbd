"""Reference solution for nnx-split-merge."""

import jax
from flax import nnx


class LinearBN(nnx.Module):
    def __init__(self, in_features: int, out_features: int, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(in_features, out_features, rngs=rngs)
        self.bn = nnx.BatchNorm(out_features, momentum=0.9, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.bn(self.linear(x))


@jax.jit
def train_forward(graphdef, params, batch_stats, x):
    # Inside a plain JAX transform the module exists only as a copy rebuilt from pytrees.
    model = nnx.merge(graphdef, params, batch_stats)
    y = model(x)  # training mode: normalizes with batch statistics and moves the running averages
    _, _, new_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    return y, new_stats


def split_merge_update(seed, x, features):
    model = LinearBN(x.shape[-1], int(features), rngs=nnx.Rngs(params=int(seed)))
    graphdef, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    y_train, new_stats = train_forward(graphdef, params, batch_stats, x)
    nnx.update(model, new_stats)  # carry the state changed inside jax.jit back to the real model
    model.eval()
    y_eval = model(x)
    return y_train, model.bn.mean[...], model.bn.var[...], y_eval
