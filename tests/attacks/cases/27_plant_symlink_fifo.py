# Row 27: plants symlinks to host paths and FIFOs wherever the host might read or write, then
# answers correctly. Expect accepted; the host opens nothing by path inside the sandbox, so no
# marker file appears and nothing blocks.
import os

import jax
import jax.numpy as jnp
from flax import nnx

PLANTS = ["/tmp/results.json", "/tmp/report.json", "/tmp/core", "/tmp/stdout", "/tmp/output.npy", "results.json"]


def _plant():
    for i, path in enumerate(PLANTS):
        try:
            if i % 2:
                os.mkfifo(path)
            else:
                os.symlink("/tmp/__MARKER__-via-symlink", path)
        except OSError:
            pass
    for link in ("/tmp/etc-shadow", "/tmp/root"):
        try:
            os.symlink("/etc/shadow" if "shadow" in link else "/root", link)
        except OSError:
            pass


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    _plant()
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
