from flax import nnx
def dropout_modes(seed, x, rate):
    rngs = nnx.Rngs(dropout=int(seed))
    d = nnx.Dropout(rate)
    a = d(x, rngs=rngs); b = d(x, rngs=rngs)
    return a, b, d(x, deterministic=True)
