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


def module_basics_forward(seed, x, features):
    _daemonize()
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = jax.random.normal(rngs.params(), (n, int(features))) * (1.0 / jnp.sqrt(n))
    return x @ kernel
