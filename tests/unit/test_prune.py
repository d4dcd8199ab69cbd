"""`gradax prepare --prune`: what no current problem version uses leaves the cache, nothing else does
(graders/prune.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from graders.compile_profile import profile_key, replay_cache_dir
from graders.problem import ProblemBank
from graders.prune import prune_cache
from graders.reference import cache_key
from graders.scaffold import scaffold
from graders.settings import GraderSettings
from graders.trusted_cache import trusted_cache_dir

HOURS_AGO = time.time() - 2 * 3600
MONTHS_AGO = time.time() - 60 * 86400


def _file(path: Path, mtime: float = HOURS_AGO, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def _setup(tmp_path: Path) -> tuple[ProblemBank, GraderSettings, dict[str, Path]]:
    problems = tmp_path / "problems"
    for problem_id in ("keep-a", "broken-b"):
        scaffold(problem_id, problems)
    (problems / "broken-b.yaml").write_text("id: broken-b\ntitle: [unclosed\n")  # does not load now
    bank = ProblemBank(problems)
    assert set(bank.problems) == {"keep-a"} and bank.errors
    settings = GraderSettings(data_dir=tmp_path / "data", problems_dir=problems)
    cache = settings.cache_dir
    key = cache_key(bank.problems["keep-a"])
    here = cache / "reference" / "keep-a"
    replay, trusted = replay_cache_dir(cache), trusted_cache_dir(cache)
    files = {
        "current outputs": _file(here / f"{key}.npz"),
        "current profile": _file(here / f"{profile_key(key)}.profile.json",
                                 text=json.dumps({"replay_keys": ["jit_listed"]})),
        "current lock": _file(here / f"{key}.lock"),
        "old outputs": _file(here / f"{'0' * 32}.npz"),
        "old profile": _file(here / f"{'1' * 32}.profile.json"),
        "old lock": _file(here / f"{'0' * 32}.lock"),
        "old temp file": _file(here / "tmpab12.tmp"),
        "young temp file": _file(here / "tmpcd34.tmp", mtime=time.time()),
        "removed problem's outputs": _file(cache / "reference" / "gone-c" / f"{'2' * 32}.npz"),
        "unloadable problem's outputs": _file(cache / "reference" / "broken-b" / f"{'3' * 32}.npz"),
        "listed program": _file(replay / "jit_listed-cache"),
        "unlisted program": _file(replay / "jit_unlisted-cache"),
        "young unlisted program": _file(replay / "jit_young-cache", mtime=time.time()),
        "trusted program unused for months": _file(trusted / "jit_t1-cache", mtime=MONTHS_AGO),
        "trusted program used lately": _file(trusted / "jit_t2-cache"),
        "trusted write that never finished": _file(trusted / ".put-x1"),
        "abandoned fill": _file(cache / ".jax-replay-staging-old1" / "jit_s-cache"),
        "fill in progress": _file(cache / ".jax-replay-staging-new1" / "jit_n-cache", mtime=time.time()),
        "problem lock": _file(cache / "locks" / "keep-a.lock"),
    }
    os.utime(cache / ".jax-replay-staging-old1", (HOURS_AGO, HOURS_AGO))
    return bank, settings, files


def test_prune_removes_only_what_no_current_version_uses(tmp_path: Path) -> None:
    bank, settings, files = _setup(tmp_path)
    result = prune_cache(bank, settings)
    gone = {name for name, path in files.items() if not path.exists()}
    assert gone == {"old outputs", "old profile", "old temp file", "removed problem's outputs", "unlisted program",
                    "trusted program unused for months", "trusted write that never finished", "abandoned fill"}
    assert not (settings.cache_dir / ".jax-replay-staging-old1").exists()
    assert dict(result.files) == {"reference": 4, "replay": 1, "trusted": 2, "staging": 1}
    assert result.summary().startswith("pruned 4 files of old versions (0.0 MB), 1 replay programs")
    assert prune_cache(bank, settings).files.total() == 0  # nothing more the second time


def test_an_unreadable_current_profile_leaves_the_replay_cache_alone(tmp_path: Path) -> None:
    """Its programs cannot be told from the others: removing any could take one a current version needs."""
    bank, settings, files = _setup(tmp_path)
    files["current profile"].write_text("{not json")
    result = prune_cache(bank, settings)
    assert result.replay_kept_all and "left alone" in result.summary()
    assert files["unlisted program"].exists() and not files["old outputs"].exists()
