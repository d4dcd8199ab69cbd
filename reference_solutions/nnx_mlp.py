"""Reference solution for nnx-mlp."""

import itertools

import jax
from flax import nnx


class MLP(nnx.Module):
    """`num_layers` Linear layers, ReLU between them, raw logits out."""

    def __init__(self, in_features: int, hidden: int, out: int, num_layers: int, *, rngs: nnx.Rngs):
        sizes = [in_features] + [hidden] * (num_layers - 1) + [out]
        # nnx.List, not a plain list: Flax 0.12 only tracks sub-modules held in NNX containers.
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)


def mlp_forward(seed, x, hidden, out, num_layers):
    rngs = nnx.Rngs(params=int(seed))
    model = MLP(x.shape[-1], int(hidden), int(out), int(num_layers), rngs=rngs)
    return model(x)
