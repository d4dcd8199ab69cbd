import jax, jax.numpy as jnp
from flax import nnx
def lenet_forward(seed, x, num_classes):
    B, H, W, C = x.shape
    rngs = nnx.Rngs(params=int(seed))
    c1 = nnx.Conv(C, 4, (3, 3), rngs=rngs); c2 = nnx.Conv(4, 8, (3, 3), rngs=rngs)
    head = nnx.Linear(H // 4 * W // 4 * 8, int(num_classes), rngs=rngs)
    h = nnx.max_pool(nnx.relu(c1(x)), (2, 2), (2, 2)); h = nnx.max_pool(nnx.relu(c2(h)), (2, 2), (2, 2))
    return jax.nn.softmax(head(h.reshape(B, -1)))
