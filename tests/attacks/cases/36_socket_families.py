# Row 36: opens sockets of unusual families (vsock, packet, netlink, crypto, bluetooth...), and socket
# pairs of them. Expect accepted: every one is refused (the allow-list is unix, IPv4 and IPv6), while the
# allowed families still work.
import socket

import jax
import jax.numpy as jnp
from flax import nnx

REFUSED = {"AF_VSOCK": 40, "AF_PACKET": 17, "AF_NETLINK": 16, "AF_ALG": 38, "AF_BLUETOOTH": 31, "AF_CAN": 29,
           "AF_RDS": 21, "AF_TIPC": 30, "AF_XDP": 44, "AF_KEY": 15, "AF_APPLETALK": 5, "AF_X25": 9, "AF_QIPCRTR": 42}
opened = []
for name, family in REFUSED.items():
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
        try:
            socket.socket(family, kind).close()
            opened.append(name)
        except OSError:
            pass
        try:
            for s in socket.socketpair(family, kind):
                s.close()
            opened.append(name + " pair")
        except OSError:
            pass
allowed = []
for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
    socket.socket(family, socket.SOCK_STREAM).close()
    allowed.append(family)
a, b = socket.socketpair()
a.close()
b.close()
if opened:
    raise RuntimeError("opened sockets of refused families: " + ", ".join(sorted(set(opened))))


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return x @ kernel
