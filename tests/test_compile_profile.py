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


REPLAY_THEN_REFERENCE = r'''
import json, sys
from graders import harness, compile_profile
harness.import_libraries()
compile_profile.configure_persistent_cache(sys.argv[2])
compile_profile.generic_warmup()
replayed = compile_profile.replay(json.loads(sys.argv[1]))
request = harness.read_request(sys.stdin.buffer)
_, fn = harness.load_program(request.header["programs"][0]["code"], request.header["function"])
misses = []
compile_profile.install_recorder(misses)
for test in request.header["tests"]:
    harness.run_test(fn, test, request.arrays, 2**26)
print(json.dumps({"replayed": replayed, "misses": misses}))
'''


@pytest.mark.parametrize("problem", ["nnx-module-basics", "nnx-mlp"])
def test_after_the_replay_the_reference_compiles_nothing(problem: str, tmp_path: Path) -> None:
    """A warm child replays the profile; the reference (and code like it) must then find every op compiled.

    Each op left out costs the submission ~10 ms of lowering at grading time, in its latency.
    """
    import subprocess
    import sys

    from graders.reference import build_request

    loaded = ProblemBank(ROOT / "problems").get(problem)
    assert loaded is not None
    cases = build_cases(loaded.problem)
    entries = ProfileCache(tmp_path).get(loaded, cases)
    request = build_request(loaded, cases, [loaded.reference_source.decode()], output_budget=2**26)
    proc = subprocess.run([sys.executable, "-c", REPLAY_THEN_REFERENCE, json.dumps(entries), str(tmp_path / "jax")],
                          input=request, capture_output=True, cwd=ROOT, timeout=300, check=True)
    result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert result["replayed"]["replayed"] == len(entries) and result["replayed"]["failed"] == 0
    assert result["misses"] == []
