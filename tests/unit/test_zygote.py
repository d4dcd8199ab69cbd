"""The zygote prepares what every child would otherwise redo, and never starts a backend before forking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import sys
from graders.child import harness, zygote
harness.import_libraries()
for name in zygote.PREFORK_IMPORTS:
    __import__(name)
zygote._precreate_contexts(3)
zygote._refuse_started_backend()  # imports and contexts alone start no backend
zygote._use_precreated_contexts()
import jax, jax.numpy as jnp
from jax._src.interpreters import mlir
handed = [mlir.make_ir_context() for _ in range(4)]
assert len({id(c) for c in handed}) == 4  # three inherited ones, then a fresh one: never the same twice
assert handed[:3] == list(reversed(zygote._contexts))
assert float(jax.jit(lambda x: x * 2)(jnp.ones(())) ) == 2.0  # lowering works on an inherited context
try:
    zygote._refuse_started_backend()
except RuntimeError:
    print("refused")
"""


@pytest.mark.slow
def test_prefork_preparation_starts_no_backend_and_contexts_are_used_once() -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "refused"
