"""Reference solution for nnx-scan-layers."""

import jax
from flax import nnx


def scan_forward(seed, x, num_layers):
    rngs = nnx.Rngs(params=int(seed))
    features, depth = x.shape[-1], int(num_layers)

    @nnx.split_rngs(splits=depth)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs: nnx.Rngs) -> nnx.Linear:
        return nnx.Linear(features, features, rngs=rngs)

    stack = create(rngs)  # every weight has a leading (num_layers,) axis

    # Scan over axis 0 of the stack; the activation h is the carry passed from layer to layer.
    @nnx.scan(in_axes=(0, nnx.Carry), out_axes=(nnx.Carry, 0))
    def forward(layer: nnx.Linear, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = nnx.tanh(layer(h))
        return h, h

    final, hiddens = forward(stack, x)
    return final, hiddens
