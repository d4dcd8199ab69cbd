import jax
from flax import nnx


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, *, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (in_features, out_features)))

    def __call__(self, x):
        return x @ self.kernel[...]


def module_basics_forward(seed, x, features):
    model = Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))
    print("debug", model.kernel.shape)
    return model(x)
