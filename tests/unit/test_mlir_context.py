"""Every lowering of a grading process goes into one shared MLIR context (graders/child/mlir_context.py), and that
changes nothing in what is compiled: a program lowered into a context many others used has the persistent cache key
it has in a fresh one, so what a trusted process put in the cache is found by a child, whatever each lowered before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# argv: cache dir, "shared" or "stock". Lowers 40 other programs first when shared, then the program under test;
# prints its value and what the persistent cache did for it (and for the eager programs making its input).
PROBE = r"""
import json, sys
import jax, jax.numpy as jnp
from jax._src.interpreters import mlir
from graders.child import mlir_context
from graders.child.profile_replay import configure_persistent_cache

configure_persistent_cache(sys.argv[1])
if sys.argv[2] == "shared":
    mlir_context.share_contexts()
    for k in range(40):
        jax.jit(lambda x, k=k: jnp.sin(x) * k)(jnp.ones((3,))).block_until_ready()
    assert mlir_context._current[1] >= 40, mlir_context._current
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
value = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.arange(6.0).reshape(2, 3))
print(json.dumps({"value": float(value), "requests": events.count("/jax/compilation_cache/compile_requests_use_cache"),
                  "hits": events.count("/jax/compilation_cache/cache_hits")}))
"""


def run_probe(cache: Path, mode: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(cache), mode], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_program_lowered_into_a_shared_context_finds_what_a_fresh_context_cached(tmp_path: Path) -> None:
    stock = run_probe(tmp_path, "stock")  # jax as it comes: a new context per lowering; fills the cache
    shared = run_probe(tmp_path, "shared")
    assert stock["hits"] == 0 and stock["requests"] >= 1
    assert shared["hits"] == shared["requests"] == stock["requests"]  # every program found, none compiled again
    assert shared["value"] == stock["value"]


def test_contexts_are_shared_up_to_a_bound_then_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    from jax._src.interpreters import mlir

    from graders.child import mlir_context

    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    monkeypatch.setattr(mlir, "make_ir_context", make)
    monkeypatch.setattr(mlir_context, "_current", [])
    monkeypatch.setattr(mlir_context, "LOWERINGS_PER_CONTEXT", 3)
    mlir_context.share_contexts(make_now=True)
    mlir_context.share_contexts(make_now=True)  # again: neither a second wrapper nor a second context
    assert len(made) == 1
    handed = [mlir.make_ir_context() for _ in range(7)]
    assert handed == [made[0]] * 3 + [made[1]] * 3 + [made[2]]
