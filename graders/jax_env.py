"""How every process that runs jax for grading compiles: the environment the parent gives it.

Each grading process (a sandboxed child, the zygote, a cold run, a trusted reference run, a replay-cache fill)
spends most of its CPU in XLA compiling small programs (the bank's tests use tiny shapes: a program runs for
microseconds and takes 10-40 ms to compile). XLA's CPU defaults optimise for long-running programs. Two flags
halve the compile time at no cost to what runs (measured side by side, docs/performance.md "Compiling for
grading"): LLVM at optimisation level 1 instead of 2, and the classic loop emitter for fusions instead of the
new MLIR fusion emitters. Results agree with the defaults to float32 rounding (1e-7 relative), far inside every
problem's tolerance.

Every process gets the same flags: jax's persistent compilation cache keys on them (a program a fill compiled
is found by a child only if both compiled alike), and the reference outputs' cache key includes them
(graders/reference.py), so changing them prepares the bank again instead of mixing programs.

`GRADAX_XLA_FLAGS` replaces the flags (empty: XLA's defaults).
"""

from __future__ import annotations

import os
from pathlib import Path

# XLA's CPU flags for grading (see the module docstring for why and how much).
GRADING_XLA_FLAGS = "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false"


def xla_flags() -> str:
    """The XLA flags grading processes compile with."""
    return " ".join(os.environ.get("GRADAX_XLA_FLAGS", GRADING_XLA_FLAGS).split())


def jax_env() -> dict[str, str]:
    """The jax part of a grading process's environment: the CPU backend, compiled with `xla_flags()`."""
    env = {"JAX_PLATFORMS": "cpu"}
    flags = xla_flags()
    if flags:
        env["XLA_FLAGS"] = flags
    return env


def trusted_env(**extra: str) -> dict[str, str]:
    """The whole environment of every trusted process (reference runs, recordings, fills, their workers; run without
    the sandbox, so nothing of the server's own environment is passed on): `jax_env()`, the graders package
    importable, a fixed hash seed, and `extra`."""
    return {"PATH": "/usr/bin:/bin", **jax_env(), "HOME": "/tmp", "LANG": "C.UTF-8",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PYTHONHASHSEED": "0", **extra}
