# Row 39 (first of two, graded one after the other through one warm pool): leaves a setsid daemon holding
# a pty and an abstract socket, files in /tmp and /dev/shm, a System V segment and a JAX config change,
# then answers correctly. 39b then looks for all of it. Expect accepted for both.
import ctypes
import os
import socket
import time

import jax
import jax.numpy as jnp
from flax import nnx

MARK = "__MARKER__"
libc = ctypes.CDLL(None, use_errno=True)
jax.config.update("jax_enable_x64", True)
for path in (f"/tmp/{MARK}", f"/dev/shm/{MARK}"):
    try:
        with open(path, "w") as fh:
            fh.write("left behind")
    except OSError:
        pass
libc.shmget(0x47580039, 4096, 0o1000 | 0o666)
master, slave = os.openpty()
if os.fork() == 0:
    os.setsid()
    libc.prctl(15, b"gx39daemon", 0, 0, 0)  # PR_SET_NAME
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0gx39-" + MARK)
    server.listen(1)
    time.sleep(600)
    os._exit(0)


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features), dtype=jnp.float32) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return (x.astype(jnp.float32) @ kernel).astype(jnp.float32)
