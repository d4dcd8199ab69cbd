import jax
from flax import nnx


class TwoLayer(nnx.Module):
    def __init__(self, n_in, n_hidden, *, rngs):
        self.first = nnx.Linear(n_in, n_hidden, kernel_init=jax.nn.initializers.he_normal(),
                                bias_init=jax.nn.initializers.constant(0.1), rngs=rngs)
        self.second = nnx.Linear(n_hidden, 1, kernel_init=jax.nn.initializers.glorot_uniform(), rngs=rngs)

    def __call__(self, x):
        return self.second(jax.nn.relu(self.first(x)))


def init_and_forward(seed, x, hidden):
    model = TwoLayer(x.shape[-1], int(hidden), rngs=nnx.Rngs(int(seed)))
    return model.first.kernel.value, model.second.kernel.value, model(x)
