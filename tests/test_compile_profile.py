"""Compile profiles and the persistent compilation cache that makes them cheap to replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from graders.cases import build_cases
from graders.compile_profile import ProfileCache
from graders.problem import ProblemBank

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def test_a_profile_whose_compilation_cache_was_lost_is_recorded_again(tmp_path: Path) -> None:
    bank = ProblemBank(ROOT / "problems")
    loaded = bank.get("nnx-module-basics")
    assert loaded is not None
    cases = build_cases(loaded.problem)
    first = ProfileCache(tmp_path)
    entries = first.get(loaded, cases)
    stored = json.loads(next((tmp_path / "reference" / loaded.id).glob("*.profile.json")).read_text())
    keys = stored["cache_keys"]
    # Every executable the recording looked up is a file the sandboxed children can read.
    assert entries and len(keys) >= len({json.dumps(e, sort_keys=True) for e in entries})
    assert all((tmp_path / "jax" / f"{k}-cache").is_file() for k in keys)
    assert any(k.startswith("jit_matmul-") for k in keys)

    shutil.rmtree(tmp_path / "jax")  # e.g. the cache was wiped, or the profile was copied without it
    again = ProfileCache(tmp_path).get(loaded, cases)
    assert again == entries
    assert all((tmp_path / "jax" / f"{k}-cache").is_file() for k in keys)


def test_an_intact_profile_is_read_not_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bank = ProblemBank(ROOT / "problems")
    loaded = bank.get("nnx-module-basics")
    assert loaded is not None
    cases = build_cases(loaded.problem)
    entries = ProfileCache(tmp_path).get(loaded, cases)

    def no_recording(*args: object, **kwargs: object) -> None:
        raise AssertionError("recorded again although profile and cache are intact")

    monkeypatch.setattr("graders.compile_profile.record_profile", no_recording)
    assert ProfileCache(tmp_path).get(loaded, cases) == entries
