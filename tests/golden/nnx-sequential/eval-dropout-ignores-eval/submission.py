# A hand-rolled dropout with a `train` flag: right numbers with train=False, but model.eval() never
# reaches it, so the model is still random in evaluation mode.
import jax
import jax.numpy as jnp
from flax import nnx


class MyDropout(nnx.Module):
    def __init__(self, rate, *, rngs):
        self.rate = rate
        self.rngs = rngs

    def __call__(self, x, train=True):
        if not train:
            return x
        keep = jax.random.bernoulli(self.rngs.dropout(), 1.0 - self.rate, x.shape)
        return jnp.where(keep, x / (1.0 - self.rate), 0.0)


class Model(nnx.Module):
    def __init__(self, din, hidden, dout, *, rngs):
        self.hidden = nnx.Linear(din, hidden, rngs=rngs)
        self.dropout = MyDropout(0.5, rngs=rngs)
        self.head = nnx.Linear(hidden, dout, rngs=rngs)

    def __call__(self, x, train=True):
        return self.head(self.dropout(nnx.gelu(self.hidden(x)), train=train))


def sequential_forward(seed, x, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed))
    model = Model(x.shape[-1], int(hidden), int(out), rngs=rngs)
    return model(x, train=False)
