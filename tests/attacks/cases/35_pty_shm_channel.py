# Row 35: two submissions graded at once (ids A and B) each open a pty, a file in /dev/shm, a System V
# shared-memory segment and an abstract unix socket (the last two under one name both know), then look
# for the other's for two seconds. Expect accepted for both: finding anything raises.
import ctypes
import errno
import os
import socket
import time

import jax
import jax.numpy as jnp
from flax import nnx

ME, OTHER, SHARED = "__SELF__", "__OTHER__", "__PAIR__"
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
KEY = 0x47580035
libc = ctypes.CDLL(None, use_errno=True)
found = []

master, slave = os.openpty()
mine = os.path.basename(os.ttyname(slave))
try:
    with open(f"/dev/shm/{ME}", "w") as fh:
        fh.write("secret")
except OSError:
    pass  # the cold sandbox's /dev/shm is not writable at all
segment = libc.shmget(KEY, 4096, IPC_CREAT | IPC_EXCL | 0o666)
if segment < 0 and ctypes.get_errno() == errno.EEXIST:
    found.append("a System V shared-memory segment")
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    listener.bind("\0gradax-row35-" + SHARED)
    listener.listen(1)
except OSError as exc:
    if exc.errno == errno.EADDRINUSE:
        found.append("an abstract unix socket")
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline and not found:
    others = sorted(set(os.listdir("/dev/pts")) - {mine, "ptmx"})
    if others:
        found.append(f"another pty: /dev/pts/{others[0]}")
    if os.path.exists(f"/dev/shm/{OTHER}"):
        found.append("a file in /dev/shm")
    time.sleep(0.05)
if segment >= 0:
    libc.shmctl(segment, IPC_RMID, None)
if found:
    raise RuntimeError("reached the other submission through " + ", ".join(found))


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
