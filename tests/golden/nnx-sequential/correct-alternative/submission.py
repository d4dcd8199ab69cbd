import jax
from flax import nnx


class Net(nnx.Module):
    def __init__(self, n_in, n_hidden, n_out, rngs):
        self.fc1 = nnx.Linear(n_in, n_hidden, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.fc2 = nnx.Linear(n_hidden, n_out, rngs=rngs)

    def __call__(self, x):
        return self.fc2(self.drop(jax.nn.gelu(self.fc1(x)), deterministic=True))


def sequential_forward(seed, x, hidden, out):
    return Net(x.shape[-1], int(hidden), int(out), nnx.Rngs(params=int(seed), dropout=int(seed)))(x)
