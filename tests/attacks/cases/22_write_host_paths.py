# Row 22: writes to /tmp, $HOME, the project tree, problems/ and the data dir, then answers correctly.
# Expect accepted; only the private tmpfs took the writes, no marker file appears on the host.
import os

import jax
import jax.numpy as jnp
from flax import nnx

TARGETS = ["/tmp", os.path.expanduser("~"), "__HOME__", "__ROOT__", "__ROOT__/problems",
           "__ROOT__/reference_solutions", "__DATA__", ".", "/var/tmp", "/dev/shm", "/opt/gradax/graders"]


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    for target in TARGETS:
        try:
            os.makedirs(target, exist_ok=True)
            with open(os.path.join(target, "__MARKER__-written"), "w") as fh:
                fh.write("escaped")
        except OSError:
            pass
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
