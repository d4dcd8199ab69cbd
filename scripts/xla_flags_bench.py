"""Side by side: what XLA flag sets cost to compile and to run, in fresh processes, alternated.

    .venv/bin/python scripts/xla_flags_bench.py --rounds 2 > docs/bench/xla-flags-ab.json

Compile: a small transformer block (LayerNorm, attention, MLP) on two shapes, eager, its `nnx.grad` and its
`nnx.jit`: what a trusted run, a fill or a child grading a wrong answer spends its CPU on (hundreds of small
programs). Run: 20 jitted gradient steps of a conv + MLP on a 64x32x32x3 batch, then 50 eager elementwise ops on
that batch: far larger than any problem of the bank, to show what the flags cost a heavy submission.
The figures are CPU seconds of the measured part of each process (not its jax import).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

FLAG_SETS = {
    "xla_defaults": "",
    "grading (opt 1, classic emitters)": "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false",
    "opt 0, classic emitters": "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false",
}

COMPILE = """
import time, jax
from flax import nnx
class Block(nnx.Module):
    def __init__(self, d, rngs):
        self.ln = nnx.LayerNorm(d, rngs=rngs)
        self.l1, self.l2 = nnx.Linear(d, 2 * d, rngs=rngs), nnx.Linear(2 * d, d, rngs=rngs)
        self.att = nnx.MultiHeadAttention(num_heads=2, in_features=d, decode=False, rngs=rngs)
    def __call__(self, x):
        x = x + self.att(self.ln(x))
        return x + self.l2(jax.nn.gelu(self.l1(self.ln(x))))
start = time.process_time()
for d, b, s in [(8, 2, 3), (16, 1, 5)]:
    m, x = Block(d, nnx.Rngs(0)), jax.random.normal(jax.random.key(1), (b, s, d))
    m(x)
    nnx.grad(lambda m, x: (m(x) ** 2).mean())(m, x)
    nnx.jit(lambda m, x: m(x).sum())(m, x)
print(time.process_time() - start)
"""

RUN = """
import time, jax, jax.numpy as jnp
from flax import nnx
class M(nnx.Module):
    def __init__(s, r):
        s.c = nnx.Conv(3, 16, (3, 3), rngs=r)
        s.l, s.o, s.n = nnx.Linear(16 * 32 * 32, 256, rngs=r), nnx.Linear(256, 10, rngs=r), nnx.LayerNorm(256, rngs=r)
    def __call__(s, x):
        x = jax.nn.relu(s.c(x)).reshape(x.shape[0], -1)
        return s.o(jax.nn.gelu(s.n(s.l(x))))
m, x = M(nnx.Rngs(0)), jax.random.normal(jax.random.key(0), (64, 32, 32, 3))
step = nnx.jit(lambda m, x: nnx.grad(lambda m: (m(x) ** 2).mean())(m))
jax.block_until_ready(step(m, x)); jax.block_until_ready(jnp.tanh(jnp.sin(x) * 2 + 1).sum())
t = time.process_time()
for _ in range(20):
    g = step(m, x)
jax.block_until_ready(g)
t2 = time.process_time()
for _ in range(50):
    y = jnp.tanh(jnp.sin(x) * 2 + 1).sum()
jax.block_until_ready(y)
print(t2 - t, time.process_time() - t2)
"""


def measure(code: str, flags: str) -> list[float]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [round(float(v), 2) for v in out.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {name: {"compile_cpu_s": [], "run_grad_steps_cpu_s": [],
                                                         "run_eager_elementwise_cpu_s": []} for name in FLAG_SETS}
    for _ in range(args.rounds):
        for name, flags in FLAG_SETS.items():  # alternated: the machine's load drifts over a run
            results[name]["compile_cpu_s"] += measure(COMPILE, flags)
            steps, elementwise = measure(RUN, flags)
            results[name]["run_grad_steps_cpu_s"].append(steps)
            results[name]["run_eager_elementwise_cpu_s"].append(elementwise)
    print(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "load_average": os.getloadavg(), "flags": FLAG_SETS, "results": results}, indent=1))


if __name__ == "__main__":
    main()
