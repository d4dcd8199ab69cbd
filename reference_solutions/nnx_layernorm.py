"""Reference solution for nnx-layernorm."""

import jax
from flax import nnx


def layer_norm_forward(x, scale, bias):
    features = x.shape[-1]
    # LayerNorm has no random parameters (scale starts at ones, bias at zeros), but takes rngs anyway.
    norm = nnx.LayerNorm(features, rngs=nnx.Rngs(0))
    norm.scale[...] = scale
    norm.bias[...] = bias
    out: jax.Array = norm(x)
    return out
