"""Every grading process compiles with the same XLA flags (graders/jax_env.py), and the prepared caches key on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.jax_env import GRADING_XLA_FLAGS, jax_env, xla_flags
from graders.supervision import SandboxLimits


def setenvs(argv: list[str]) -> dict[str, str]:
    return {argv[i + 1]: argv[i + 2] for i, arg in enumerate(argv) if arg == "--setenv"}


def test_the_grading_flags_are_the_default_and_can_be_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRADAX_XLA_FLAGS", raising=False)
    assert xla_flags() == GRADING_XLA_FLAGS
    assert jax_env() == {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": GRADING_XLA_FLAGS}
    monkeypatch.setenv("GRADAX_XLA_FLAGS", "  --xla_backend_optimization_level=0  ")
    assert jax_env()["XLA_FLAGS"] == "--xla_backend_optimization_level=0"
    monkeypatch.setenv("GRADAX_XLA_FLAGS", "")  # XLA's own defaults: no XLA_FLAGS at all
    assert jax_env() == {"JAX_PLATFORMS": "cpu"}


def test_sandboxed_and_trusted_processes_get_the_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from graders.jax_env import trusted_env
    from graders.sandbox import bwrap_argv

    monkeypatch.delenv("GRADAX_XLA_FLAGS", raising=False)
    sandboxed = setenvs(bwrap_argv(SandboxLimits(), 3, ["python3"], []))
    assert sandboxed["XLA_FLAGS"] == GRADING_XLA_FLAGS and sandboxed["JAX_PLATFORMS"] == "cpu"
    assert trusted_env()["XLA_FLAGS"] == GRADING_XLA_FLAGS  # fills and reference runs


def test_the_reference_cache_key_changes_with_the_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Programs and outputs prepared under other flags are prepared again, not mixed with these."""
    from graders.problem import ProblemBank
    from graders.reference import cache_key
    from graders.scaffold import scaffold

    scaffold("flags-key", tmp_path)
    loaded = ProblemBank(tmp_path).problems["flags-key"]
    monkeypatch.delenv("GRADAX_XLA_FLAGS", raising=False)
    default = cache_key(loaded)
    monkeypatch.setenv("GRADAX_XLA_FLAGS", "")
    assert cache_key(loaded) != default
    monkeypatch.setenv("GRADAX_XLA_FLAGS", GRADING_XLA_FLAGS)
    assert cache_key(loaded) == default
