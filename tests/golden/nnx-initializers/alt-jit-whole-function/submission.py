"""The reference jitted as a whole: both layers are built only inside the trace, and both are the model (two
outermost modules, as when built concretely)."""

import jax

from flax import nnx


def init_and_forward(seed, x, hidden):
    rngs = nnx.Rngs(params=int(seed))
    init = nnx.initializers
    # He (Kaiming) normal suits a ReLU layer; Glorot (Xavier) uniform a layer with no activation after it.
    layer1 = nnx.Linear(x.shape[-1], int(hidden), kernel_init=init.he_normal(), bias_init=init.constant(0.1), rngs=rngs)
    layer2 = nnx.Linear(int(hidden), 1, kernel_init=init.xavier_uniform(), rngs=rngs)
    out = layer2(nnx.relu(layer1(x)))
    return layer1.kernel[...], layer2.kernel[...], out


init_and_forward = jax.jit(init_and_forward, static_argnums=(0, 2))
