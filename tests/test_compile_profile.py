"""Compile profiles and the persistent compilation cache that makes them cheap to replay."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from graders.cases import build_cases
from graders.compile_profile import ProfileCache, misses_after_replay, replay_cache_dir
from graders.problem import ProblemBank
from graders.settings import GraderSettings
from graders.trusted_cache import trusted_cache_dir

pytestmark = [pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def test_the_replay_cache_holds_only_library_programs_and_is_refilled_without_recording(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """ATTACKS.md row 34: what warm children can read holds no program compiled from reference code.

    `nnx-jit-train-step`'s reference jits its own `train_step` (with `loss_fn` inside), and so do its known
    mistakes and alternatives (recorded for the profile's extra entries): the trusted side compiles them, but only
    library functions and primitives replayed on zeros reach the replay cache. The fill reads the trusted runs'
    cache, and takes from it only programs whose whole module, metadata included, it lowered itself.
    """
    bank = ProblemBank(ROOT / "problems")
    loaded = bank.get("nnx-jit-train-step")
    assert loaded is not None
    cases = build_cases(loaded.problem)
    with caplog.at_level("INFO", logger="gradax.compile_profile"):
        entries = ProfileCache(tmp_path).get(loaded, cases)
    [fill] = [r for r in caplog.records if r.getMessage().startswith("replayed ")]
    # Most of the library programs the reference run compiled are taken, not compiled again.
    assert fill.__dict__["reused"] > fill.__dict__["compiled"], fill.getMessage()
    stored = json.loads(next((tmp_path / "reference" / loaded.id).glob("*.profile.json")).read_text())
    keys = stored["replay_keys"]
    replay_dir = replay_cache_dir(tmp_path)
    on_disk = sorted(p.name.removesuffix("-cache") for p in replay_dir.iterdir())
    assert entries and on_disk == sorted(keys)  # nothing but what the replay compiled
    assert not (tmp_path / "jax").exists()  # and no other cache beside it
    assert entries == stored["entries"]
    recorded = entries + stored["extra"]
    library = {name for e in recorded for name in _compiled_names(e)} | {"jit_add"}  # generic_warmup adds one
    assert {k.rsplit("-", 1)[0] for k in keys} <= library, keys
    sources = [loaded.reference_source.decode()] + [m.code for m in loaded.problem.known_mistakes] + [
        a.code for a in loaded.problem.alternatives]
    defined = {node.name for source in sources for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    assert {"train_step", "loss_fn"} <= defined
    for name, hlo in _programs(replay_dir):
        # A program traced from those functions names them in its ops' metadata: `jit(train_step)/jit(loss_fn)/...`.
        traced_from = set(re.split(r"[/()\[\], ]+", " ".join(re.findall(r'op_name="([^"]*)"', hlo))))
        assert not defined & traced_from, (name, defined & traced_from)
    # The reference's own programs went to the trusted runs' cache, which no sandbox binds (graders/trusted_cache.py;
    # row 34's attack searches the data dir for them): there, and only there.
    trusted = sorted(p.name for p in trusted_cache_dir(tmp_path).iterdir())
    assert [n for n in trusted if n.startswith("jit_train_step-")], trusted

    # The cache wiped (or the profile copied without it): replayed again, not recorded again.
    shutil.rmtree(replay_dir)

    def no_recording(*args: object, **kwargs: object) -> None:
        raise AssertionError("recorded again although only the replay cache was lost")

    monkeypatch.setattr("graders.compile_profile.record_profile", no_recording)
    assert ProfileCache(tmp_path).get(loaded, cases) == entries
    assert sorted(p.name.removesuffix("-cache") for p in replay_dir.iterdir()) == on_disk
    assert ProfileCache(tmp_path).is_stored(loaded)


KEYED_PROGRAM = r"""
import json, sys
from pathlib import Path
from graders.child import harness
from graders.trusted_cache import use_cache
cache = use_cache(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
harness.import_libraries()
import jax, numpy as np
space = {}
source = sys.stdin.read()
exec(compile(source, source.splitlines()[0].lstrip("# "), "exec"), space)
jax.block_until_ready(jax.jit(space["scale"])(np.zeros(3, np.float32)))
print(json.dumps({"compiled": cache.compiled, "reused": cache.reused}))
"""


def _compile_scale(source: str, write: Path, *reads: Path) -> dict[str, int]:
    """Compile `jax.jit(scale)` of `source` (its first line a comment naming its file) in a trusted process of its
    own, writing `write` and reading `reads`, as a reference run or a fill does (graders/trusted_cache.py)."""
    import subprocess
    import sys

    from graders.jax_env import trusted_env

    proc = subprocess.run([sys.executable, "-c", KEYED_PROGRAM, str(write), *map(str, reads)], input=source,
                          capture_output=True, text=True, check=True, timeout=300, env=trusted_env(), cwd="/tmp")
    counts: dict[str, int] = json.loads(proc.stdout.splitlines()[-1])
    return counts


def test_a_program_is_taken_from_another_cache_only_for_the_very_same_module(tmp_path: Path) -> None:
    """Why a fill may read the trusted runs' cache: a key covers the module's metadata, which names no file or line.

    The same function from another file and line is the same program, and is taken. The same ops under a scope
    the reference named (the name reaches the ops' metadata, as a reference's own function names do) is another
    program: compiled anew, never taken with that name in it. Before keys covered metadata, it was taken.
    """
    trusted, fill = tmp_path / "jax-trusted", tmp_path / "staging"
    body = "    with jax.named_scope('reference_helper'):\n        return jnp.sin(x) * 2\n"
    header = "import jax\nimport jax.numpy as jnp\n"
    assert _compile_scale(f"# reference.py\n{header}def scale(x):\n{body}", trusted)["compiled"] == 1
    moved = f"# elsewhere.py\n{header}\n\n\n\ndef scale(x):\n{body}"
    assert _compile_scale(moved, fill, trusted) == {"compiled": 0, "reused": 1}
    assert sorted(p.name for p in fill.iterdir()) == sorted(p.name for p in trusted.iterdir())
    unscoped = f"# filler.py\n{header}def scale(x):\n    return jnp.sin(x) * 2\n"
    assert _compile_scale(unscoped, fill, trusted) == {"compiled": 1, "reused": 0}
    [own] = set(p.name for p in fill.iterdir()) - set(p.name for p in trusted.iterdir())
    [(_, hlo)] = [p for p in _programs(fill) if p[0] == own]
    assert "sine" in hlo and "reference_helper" not in hlo


def _compiled_names(entry: dict[str, object]) -> set[str]:
    """The jax cache names a profile entry's replay compiles: the library function or primitive it names, jnp.einsum's
    `_einsum`, or the multiply and add of a cotangent sum."""
    if entry["k"] == "einsum":
        return {"jit__einsum"}
    if entry["k"] == "cot":
        return {"jit_mul", "jit_multiply", "jit_add"}
    return {f"jit_{entry['n']}"}


def _programs(directory: Path) -> list[tuple[str, str]]:
    """Each cache entry's program as HLO text, deserialized as a child could (in a process of its own)."""
    import subprocess
    import sys

    script = r"""
import json, os, sys
from jax._src import compilation_cache as cc, xla_bridge
backend = xla_bridge.get_backend()
out = []
for name in sorted(os.listdir(sys.argv[1])):
    raw = open(os.path.join(sys.argv[1], name), "rb").read()
    exe, _ = cc.extract_executable_and_time(cc.decompress_executable(raw))
    program = backend.deserialize_executable(exe, backend.devices()[:1], None)
    out.append((name, chr(10).join(m.to_string() for m in program.hlo_modules())))
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script, str(directory)], capture_output=True, check=True, timeout=300)
    return [tuple(p) for p in json.loads(proc.stdout)]


def test_an_intact_profile_is_read_not_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bank = ProblemBank(ROOT / "problems")
    loaded = bank.get("nnx-module-basics")
    assert loaded is not None
    cases = build_cases(loaded.problem)
    entries = ProfileCache(tmp_path).get(loaded, cases)

    def no_recording(*args: object, **kwargs: object) -> None:
        raise AssertionError("recorded again although profile and cache are intact")

    monkeypatch.setattr("graders.compile_profile.record_profile", no_recording)
    monkeypatch.setattr("graders.compile_profile.fill_replay_cache", no_recording)
    assert ProfileCache(tmp_path).get(loaded, cases) == entries


@pytest.mark.parametrize("problem", ["nnx-layernorm", "nnx-multihead-attention", "nnx-conv-lenet"])
def test_after_the_replay_the_reference_compiles_nothing(problem: str, data_dir: Path) -> None:
    """A warm child replays the profile; the reference (and code like it) must then find every op compiled.

    Each op left out costs the submission ~10-80 ms of compiling at grading time, in its latency. With the probes
    a submission is graded with:
    - `nnx-layernorm`'s gradient check takes an eager gradient (forward and backward-pass primitives, replayed
      as `vjp` entries: value-and-grad had 21 compilations at grading time before them), adds up cotangents of
      values used twice (`cot` entries), and its batch-invariance check slices rows (on the host now): 9
      compilations, ~300 ms, before those two;
    - `nnx-multihead-attention` runs jax.nn's einsums under nnx's vmap (`einsum` entries): 8 compilations,
      ~700 ms, before;
    - `nnx-conv-lenet`'s convolutions take a ConvDimensionNumbers parameter: 6 compilations before.
    """
    loaded = ProblemBank(ROOT / "problems").get(problem)
    assert loaded is not None
    cases = build_cases(loaded.problem)
    # The profile and replay cache of the suite's shared data dir: prepared there by the golden cases (one trusted
    # run, as `gradax prepare`), or recorded and filled by this call if it comes first; not again in a private dir
    # (~8 CPU-s each).
    cache_dir = GraderSettings(data_dir=data_dir).cache_dir
    entries = ProfileCache(cache_dir).get(loaded, cases)
    result = _run_after_the_replay(loaded.reference_source.decode(), problem, entries, cache_dir)
    assert result["replayed"]["replayed"] == len(entries) and result["replayed"]["failed"] == 0
    assert result["misses"] == []
    if problem == "nnx-layernorm":
        assert any("vjp" in e for e in entries) and any(e["k"] == "cot" for e in entries), entries


@pytest.mark.parametrize("program", ["batch-axis", "two-pass-by-hand"])
def test_known_mistakes_and_alternatives_find_their_programs_in_the_replay_cache(program: str, data_dir: Path) -> None:
    """A layernorm written out by hand (the known mistake `batch-axis`, the alternative `two-pass-by-hand`) runs
    other primitives on other shapes than the reference's nnx.LayerNorm: a warm child compiled 65-93 programs of
    its own for it (1.4-2.0 CPU-s). The trusted recording keeps the mistakes' and alternatives' dispatches as the
    profile's extra entries and a fill compiles them into the replay cache; a child, which replays only the
    reference's entries (its warm-up is unchanged), then finds every one of those programs there."""
    loaded = ProblemBank(ROOT / "problems").get("nnx-layernorm")
    assert loaded is not None
    cache_dir = GraderSettings(data_dir=data_dir).cache_dir
    profiles = ProfileCache(cache_dir)
    entries = profiles.get(loaded, build_cases(loaded.problem))
    stored = json.loads(profiles.path(loaded).read_text())  # this version's (the shared data dir may hold others)
    assert stored["entries"] == entries and stored["extra"]
    assert not [e for e in stored["extra"] if e in entries]  # nothing the warm-up replays already
    code = {p.id: p.code for p in [*loaded.problem.known_mistakes, *loaded.problem.alternatives]}[program]
    result = _run_after_the_replay(code, loaded.id, entries, cache_dir)
    assert result["misses"], "it compiled nothing beyond the reference's programs: nothing was tested"
    assert result["from_cache"] == len(result["misses"]), result  # deserialized, none compiled in the child


def _run_after_the_replay(code: str, problem: str, entries: list[dict[str, object]], cache_dir: Path) -> dict[str, Any]:
    """`code` run on the problem's tests, with its probes, after a replay of `entries` as a warm child does, over a
    copy of the whole replay cache (graders/compile_profile.py `misses_after_replay`)."""
    loaded = ProblemBank(ROOT / "problems").get(problem)
    assert loaded is not None
    return misses_after_replay(loaded, code, entries, replay_cache_dir(cache_dir), timeout_s=300)


def test_parameters_come_back_as_the_types_they_were() -> None:
    """A parameter replayed as another type that compares and hashes equal fills jax's caches for the real key
    with the wrong program: conv's ConvDimensionNumbers replayed as a plain tuple made nnx-conv-lenet's reference
    raise AssertionError in every warm child. So a ConvDimensionNumbers comes back as one, numpy scalars as numpy
    scalars, and any other tuple subclass is left out of the profile."""
    from collections import namedtuple

    import numpy as np
    from jax import lax

    from graders.child.profile_replay import _decode
    from graders.compile_profile import Unencodable, _encode

    numbers = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    back = _decode(json.loads(json.dumps(_encode(numbers, True))))
    assert type(back) is lax.ConvDimensionNumbers and back == numbers
    with pytest.raises(Unencodable):
        _encode(namedtuple("Pair", "a b")(1, 2), True)
    assert _encode((1, 2), True) == {"seq": [{"v": 1, "t": "int"}, {"v": 2, "t": "int"}], "tuple": True}
    static = _decode(json.loads(json.dumps(_encode((np.int64(1),), True))))
    assert static == (1,) and type(static[0]) is np.int64
    scalar = _decode(json.loads(json.dumps(_encode(np.float32(0.5), False))))
    assert type(scalar) is np.float32 and scalar == 0.0  # an argument: its shape and dtype, never its value


VMAP_PROGRAM = r'''
import json, logging, sys
import jax, jax.numpy as jnp
from graders import compile_profile
from graders.child import profile_replay


SCALE = jnp.asarray(3.0, jnp.float32)


def attend(q, k):
    scale = jnp.sqrt(SCALE)  # no mapped argument: runs as it would outside the vmap
    weights = jax.nn.softmax(q @ k.T / scale, axis=-1)
    mixed = jnp.einsum("ts,sd->td", weights, k)
    return jnp.where(weights > 0, weights, 0.0).sum() + mixed.sum()


q, k = jnp.ones((4, 5, 3)), jnp.ones((4, 6, 3))
profile_replay.generic_warmup()
if sys.argv[1] == "record":
    entries = []
    compile_profile.install_recorder(entries)
    jax.vmap(attend)(q, k)
    print(json.dumps(entries))
else:
    print(json.dumps(profile_replay.replay(json.loads(sys.stdin.read()))))
    jax.config.update("jax_log_compiles", True)
    compiled = []
    class Compiles(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("Compiling "):
                compiled.append(record.getMessage()[:120])
    log = logging.getLogger("jax._src.interpreters.pxla")
    log.addHandler(Compiles())
    log.propagate = False
    jax.vmap(attend)(q, k)
    print(json.dumps(compiled))
'''


def test_library_calls_under_an_eager_vmap_are_replayed_as_vmaps() -> None:
    """What `jax.vmap`/`nnx.vmap` (and the batch-invariance check) does to library functions is replayed as a
    vmap of each of them on zeros: the same mapped program then compiles nothing (multihead-attention left 40
    programs to compile at grading time before, 8 after: its einsums, now `einsum` entries). A call under the vmap
    whose arguments are not mapped (an initializer's `sqrt(scale)` inside `nnx.vmap`) is replayed under a vmap
    too, with no axis mapped."""
    import subprocess
    import sys

    recorded = subprocess.run([sys.executable, "-c", VMAP_PROGRAM, "record"], capture_output=True, check=True,
                              cwd=ROOT, timeout=300)
    entries = json.loads(recorded.stdout.decode().strip().splitlines()[-1])
    assert [e for e in entries if "vmap" in e], entries
    assert {"axes": [0, 0], "size": 4} in [e.get("vmap") for e in entries]
    assert [e for e in entries if e["k"] == "einsum" and e["s"] == "ts,sd->td" and "vmap" in e], entries
    assert [e for e in entries if e.get("n") == "sqrt" and e.get("vmap") == {"axes": [None], "size": 4}], entries
    replayed = subprocess.run([sys.executable, "-c", VMAP_PROGRAM, "replay"], input=json.dumps(entries).encode(),
                              capture_output=True, check=True, cwd=ROOT, timeout=300)
    stats, compiled = [json.loads(line) for line in replayed.stdout.decode().strip().splitlines()[-2:]]
    assert stats["failed"] == 0 and stats["replayed"] == len(entries)
    assert compiled == [], compiled


def test_the_compile_misses_script_runs_every_instructor_program(small_bank: Any, data_dir: Path) -> None:
    """scripts/compile-misses.py --all-programs, the diagnostic for a problem's warm speed: the reference compiles
    nothing after the replay, and what each known mistake compiles comes from the replay cache."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "scripts/compile-misses.py", "tiny-0", "--all-programs", "--data-dir",
                           str(data_dir), "--problems-dir", str(small_bank.problems_dir)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    said = {line.split(" ran ")[0].strip(): line for line in proc.stdout.splitlines() if " ran " in line}
    loaded = ProblemBank(small_bank.problems_dir).get("tiny-0")
    assert loaded is not None
    mistakes = {f"known mistake {m.id}" for m in loaded.problem.known_mistakes}
    assert set(said) == {"the reference"} | mistakes, proc.stdout
    assert "compiled 0 programs" in said["the reference"], proc.stdout
    counts = []
    for name in sorted(mistakes):
        count, from_cache = said[name].split(" and compiled ")[1].split(" programs, ")
        assert from_cache.startswith(f"{count} of them from the replay cache"), said[name]
        counts.append(int(count))
    assert max(counts) > 0, proc.stdout  # `plus-two` adds a scalar on every test's shape: programs of its own
