from flax import nnx
def dropout_modes(seed, x, rate):
    drop = nnx.Dropout(rate, rngs=nnx.Rngs(dropout=int(seed)))
    return drop(x), drop(x), drop(x)
