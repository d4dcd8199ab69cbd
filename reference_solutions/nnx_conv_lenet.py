"""Reference solution for nnx-conv-lenet."""

from functools import partial

import jax
from flax import nnx


class LeNet(nnx.Module):
    """conv-relu-pool twice, flatten, one Linear head: LeNet-5 shrunk to a few kilobytes."""

    def __init__(self, height: int, width: int, channels: int, num_classes: int, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(channels, 4, kernel_size=(3, 3), rngs=rngs)
        self.conv2 = nnx.Conv(4, 8, kernel_size=(3, 3), rngs=rngs)
        self.pool = partial(nnx.max_pool, window_shape=(2, 2), strides=(2, 2))
        # SAME padding keeps the size; each pool halves it: the head sees (H/4) * (W/4) * 8 numbers.
        self.head = nnx.Linear((height // 4) * (width // 4) * 8, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.pool(nnx.relu(self.conv1(x)))
        x = self.pool(nnx.relu(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)  # flatten in (H, W, C) order, channels last
        return self.head(x)


def lenet_forward(seed, x, num_classes):
    _, height, width, channels = x.shape
    model = LeNet(height, width, channels, int(num_classes), rngs=nnx.Rngs(params=int(seed)))
    return model(x)
