"""Reference solution for nnx-dropout-modes."""

import jax
from flax import nnx


def dropout_modes(seed, x, rate):
    # One Dropout layer owns the `dropout` stream, so every stochastic call takes the next key.
    dropout = nnx.Dropout(float(rate), rngs=nnx.Rngs(dropout=int(seed)))
    first: jax.Array = dropout(x)
    second: jax.Array = dropout(x)
    dropout.eval()  # deterministic: the identity, no mask and no scaling
    evaluated: jax.Array = dropout(x)
    return first, second, evaluated
