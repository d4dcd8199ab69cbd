# Row 5, by a signal: SIGKILL to itself while the file is being loaded, above a correct answer. Expect
# runtime_error on both paths: a warm child was its PID namespace's init, which the kernel spares every signal
# it sends itself, so this was accepted warm and a runtime error cold.
import os
import signal

import jax
import jax.numpy as jnp
from flax import nnx

os.kill(os.getpid(), signal.SIGKILL)


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, *, rngs):
        key = rngs.params()
        self.kernel = nnx.Param(jax.random.normal(key, (in_features, out_features)) * (1.0 / jnp.sqrt(in_features)))

    def __call__(self, x):
        return x @ self.kernel[...]


def module_basics_forward(seed, x, features):
    return Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))(x)
