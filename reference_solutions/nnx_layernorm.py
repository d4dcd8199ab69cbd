"""Reference solution for nnx-layernorm."""

import jax
from flax import nnx


def layer_norm_forward(x, scale, bias):
    features = x.shape[-1]
    # LayerNorm has no random parameters (scale starts at ones, bias at zeros), but takes rngs anyway.
    # Two-pass variance, as the statement defines it: the default one-pass form cancels on rows with a
    # large mean and a tiny spread.
    norm = nnx.LayerNorm(features, use_fast_variance=False, rngs=nnx.Rngs(0))
    norm.scale[...] = scale
    norm.bias[...] = bias
    out: jax.Array = norm(x)
    return out
