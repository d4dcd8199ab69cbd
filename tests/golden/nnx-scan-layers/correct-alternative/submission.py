import jax.numpy as jnp
from flax import nnx


def scan_forward(seed, x, num_layers):
    n, d = int(num_layers), x.shape[-1]

    @nnx.split_rngs(splits=n)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nnx.Linear(d, d, rngs=rngs)

    stack = create(nnx.Rngs(params=int(seed)))
    kernels, biases = stack.kernel[...], stack.bias[...]
    h, outs = x, []
    for k in range(n):  # the same computation as the scan, unrolled by hand
        h = jnp.tanh(h @ kernels[k] + biases[k])
        outs.append(h)
    return h, jnp.stack(outs)
