import jax
from flax import nnx
def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    kernel = jax.random.normal(rngs.params(), (x.shape[-1], int(features)))
    print("debug", kernel.shape)
    return x @ kernel
