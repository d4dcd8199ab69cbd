from flax import nnx
def residual_block(seed, x):
    rngs = nnx.Rngs(params=int(seed)); f = x.shape[-1]
    c1 = nnx.Conv(f, f, kernel_size=(3, 3), rngs=rngs); b1 = nnx.BatchNorm(f, rngs=rngs)
    c2 = nnx.Conv(f, f, kernel_size=(3, 3), rngs=rngs); b2 = nnx.BatchNorm(f, rngs=rngs)
    def block(x, train):
        h = nnx.relu(b1(c1(x), use_running_average=not train))
        return nnx.relu(b2(c2(h), use_running_average=not train)) + x
    return block(x, True), block(x, False)
