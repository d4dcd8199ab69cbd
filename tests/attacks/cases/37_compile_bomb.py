# Row 37: a jitted function that unrolls to hundreds of thousands of operations (a compile bomb): tracing
# and compiling it would take minutes and gigabytes. Expect time_limit_exceeded within the CPU limit,
# with the run's memory held by its own cgroup (the host's untouched).
import jax
import jax.numpy as jnp


@jax.jit
def bomb(x):
    for i in range(500_000):
        x = jnp.sin(x) * 1.0001 + i
    return x


def module_basics_forward(seed, x, features):
    return bomb(x)
