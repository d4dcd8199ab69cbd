# Row 38: a correct answer that is slow to compile (thousands of operations that change nothing), graded
# while the machine is busy. Expect accepted: judged on its own CPU time, not on the wall clock. It also
# computes for 1.5 CPU-s at import, so the run's CPU time does not hang on how fast this machine compiles
# (a warm child with a fast compile used only 1 CPU-s), and waits 3.5 s, so on the wall clock it always takes
# longer than its 5 s CPU limit.
import time

import jax
import jax.numpy as jnp
from flax import nnx

_end = time.process_time() + 1.5
while time.process_time() < _end:
    pass
# Waiting costs no CPU: with it the run outlasts its CPU limit on the wall clock even where the scheduler
# favours the grader's cgroup over the machine's busy loops (an idle CI machine ran it in 2.4 s of wall).
time.sleep(3.5)


@jax.jit
def padded(x, kernel):
    y = x @ kernel
    for _ in range(__OPS__):
        y = y + 0.0 * jnp.tanh(y)
    return y


class _Projection(nnx.Module):
    """The answer keeps its kernel as an nnx.Param, like the reference: the problem's state check passes."""

    def __init__(self, n, features, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n, features)) * (1.0 / jnp.sqrt(n)))


def module_basics_forward(seed, x, features):
    rngs = nnx.Rngs(int(seed))
    n = x.shape[-1]
    kernel = _Projection(n, int(features), rngs).kernel[...]
    return padded(x, kernel)
