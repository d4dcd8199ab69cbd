"""Reference solution for nnx-vmap-ensemble."""

import jax
from flax import nnx


def ensemble_forward(seed, x, members, out):
    rngs = nnx.Rngs(params=int(seed))
    in_features, n = x.shape[-1], int(members)

    # split_rngs gives each vmapped call its own key; vmap stacks the members' weights on axis 0.
    @nnx.split_rngs(splits=n)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs: nnx.Rngs) -> nnx.Linear:
        return nnx.Linear(in_features, int(out), rngs=rngs)

    ensemble = create(rngs)

    @nnx.vmap(in_axes=(0, None), out_axes=0)  # members along axis 0, the same x for every member
    def forward(model: nnx.Linear, x: jax.Array) -> jax.Array:
        return nnx.tanh(model(x))

    predictions = forward(ensemble, x)
    return predictions, predictions.mean(axis=0)
