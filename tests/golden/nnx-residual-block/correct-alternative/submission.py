from flax import nnx


class Block(nnx.Module):
    def __init__(self, f, rngs):
        self.c1 = nnx.Conv(f, f, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.n1 = nnx.BatchNorm(f, rngs=rngs)
        self.c2 = nnx.Conv(f, f, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.n2 = nnx.BatchNorm(f, rngs=rngs)

    def __call__(self, x, train):
        h = nnx.relu(self.n1(self.c1(x), use_running_average=not train))
        return nnx.relu(x + self.n2(self.c2(h), use_running_average=not train))


def residual_block(seed, x):
    block = Block(x.shape[-1], nnx.Rngs(params=int(seed)))
    return block(x, train=True), block(x, train=False)
