import jax.numpy as jnp
from flax import nnx
def lenet_forward(seed, x, num_classes):
    rngs = nnx.Rngs(params=int(seed)); b, h, w, c = x.shape
    conv1 = nnx.Conv(c, 4, kernel_size=(3, 3), rngs=rngs)
    conv2 = nnx.Conv(4, 8, kernel_size=(3, 3), rngs=rngs)
    head = nnx.Linear((h // 4) * (w // 4) * 8, int(num_classes), rngs=rngs)
    x = nnx.max_pool(nnx.relu(conv1(x)), window_shape=(2, 2), strides=(2, 2))
    x = nnx.max_pool(nnx.relu(conv2(x)), window_shape=(2, 2), strides=(2, 2))
    return head(jnp.transpose(x, (0, 3, 1, 2)).reshape(b, -1))
