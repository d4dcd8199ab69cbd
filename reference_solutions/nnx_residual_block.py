"""Reference solution for nnx-residual-block."""

import jax
from flax import nnx


class ResidualBlock(nnx.Module):
    """relu(x + bn2(conv2(relu(bn1(conv1(x)))))): the basic block of ResNet."""

    def __init__(self, features: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(features, features, kernel_size=(3, 3), rngs=rngs)
        self.bn1 = nnx.BatchNorm(features, rngs=rngs)
        self.conv2 = nnx.Conv(features, features, kernel_size=(3, 3), rngs=rngs)
        self.bn2 = nnx.BatchNorm(features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = nnx.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return nnx.relu(h + x)  # add the skip connection before the last activation


def residual_block(seed, x):
    block = ResidualBlock(x.shape[-1], rngs=nnx.Rngs(params=int(seed)))
    block.train()  # BatchNorm normalizes with batch statistics and updates its running averages
    train_out = block(x)
    block.eval()  # BatchNorm now uses the running averages
    eval_out = block(x)
    return train_out, eval_out
