# Row 8: double-forks a setsid daemon that would outlive the run, then answers correctly.
# Expect accepted, and no process carrying the marker afterwards.
import os

import jax
import jax.numpy as jnp
from flax import nnx


def _daemonize():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/usr/bin/sleep", ["sleep", "3600", "__MARKER__"])
        os._exit(0)


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    _daemonize()
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
