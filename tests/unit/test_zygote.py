"""The zygote prepares what every child would otherwise redo, and never starts a backend before forking."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import gc, sys
from graders.child import harness, mlir_context, zygote
collections = []
gc.callbacks.append(lambda phase, info: collections.append(info["generation"]) if phase == "start" else None)
harness.import_libraries()
# None while importing (~310 before, 2 of them full), one at most as collecting starts again
assert len(collections) <= 1 and 2 not in collections and gc.isenabled(), collections
gc.disable()
harness.import_libraries()
assert not gc.isenabled()  # a caller's choice is left as it was
gc.enable()
for name in zygote.PREFORK_IMPORTS:
    __import__(name)
mlir_context.share_contexts(make_now=True)
zygote._refuse_started_backend()  # imports and the context alone start no backend
made = mlir_context._current[0]
import jax, jax.numpy as jnp
assert float(jax.jit(lambda x: x * 2)(jnp.ones(())) ) == 2.0
assert float(jax.jit(lambda x: x + 3)(jnp.ones(())) ) == 4.0
assert mlir_context._current[0] is made and mlir_context._current[1] >= 2  # lowered into the one made before
try:
    zygote._refuse_started_backend()
except RuntimeError:
    print("refused")
"""


@pytest.mark.slow
def test_prefork_preparation_starts_no_backend_and_children_lower_into_its_context() -> None:
    """And the libraries are imported without the garbage collector walking what they build (harness.py)."""
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "refused"


def test_the_namespace_calls_load_libc_without_running_a_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ctypes.util.find_library` runs `ldconfig -p` in a subprocess: every warm child's holder paid a fork and an
    exec for it. nsutil names glibc by its soname, and the zygote loads it once, before it forks."""
    import ast
    import ctypes.util
    import importlib
    import os

    from graders.child import nsutil

    def refuse(name: str) -> str:
        raise AssertionError(f"find_library({name!r}) runs a program")

    monkeypatch.setattr(ctypes.util, "find_library", refuse)
    reloaded = importlib.reload(nsutil)
    assert reloaded._libc.getpid() == os.getpid()
    # The zygote imports it before its fork loop (a holder's import then finds it loaded).
    tree = ast.parse((ROOT / "graders" / "child" / "zygote.py").read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    imported = {alias.name for node in main.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert "nsutil" in imported
