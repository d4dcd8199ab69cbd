from flax import nnx


def dropout_modes(seed, x, rate):
    # The default stream also feeds rngs.dropout(); evaluation through the call flag instead of .eval().
    drop = nnx.Dropout(rate=rate, rngs=nnx.Rngs(int(seed)))
    return drop(x), drop(x), drop(x, deterministic=True)
