# Row 39 (second of two): looks for everything 39a left behind. Expect accepted: finding anything raises.
import ctypes
import glob
import os
import socket

import jax
import jax.numpy as jnp
from flax import nnx

MARK = "__MARKER__"
libc = ctypes.CDLL(None, use_errno=True)
left = []
if jax.config.jax_enable_x64:
    left.append("the JAX config change")
left += [p for p in glob.glob("/tmp/*") + glob.glob("/dev/shm/*") if MARK in p]
left += [f"/dev/pts/{p}" for p in os.listdir("/dev/pts") if p != "ptmx"]
if libc.shmget(0x47580039, 0, 0) >= 0:
    left.append("the System V segment")
probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    probe.connect("\0gx39-" + MARK)
    left.append("the daemon's abstract socket")
except OSError:
    pass
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/comm") as fh:
            if fh.read().strip() == "gx39daemon":
                left.append(f"the daemon (pid {pid})")
    except OSError:
        pass
if left:
    raise RuntimeError("found what an earlier submission left: " + ", ".join(left))


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
