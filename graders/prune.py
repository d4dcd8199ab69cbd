"""Removing from a data dir's cache what no current problem version uses (`gradax prepare --prune`).

Everything under `<data>/cache` is keyed by content: a problem edited (or the libraries or the XLA flags changed)
is a new version, with new reference outputs, a new compile profile and perhaps new replay programs; the old
version's files stay until pruned (a semester of edits adds up). What is kept:
- `reference/<id>/`: the reference outputs and the compile profile of each problem's current version; all of it
  for a problem whose file does not load now (a running server may still grade its last good version);
- `jax-replay/`: the programs some current profile lists (`replay_keys`); if a current profile cannot be read,
  nothing of the replay cache is removed;
- `jax-trusted/`: the programs a trusted run wrote or read within `trusted_days` (`ReadThroughCache` touches what
  it reads). Only the reference runs read them, to prepare an edited problem again faster.
Never removed: lock files (a process may hold one), and anything modified within the last hour (a preparation in
progress writes its files before its profile lists them). A fill's staging directory left by a crash goes after
that hour.

Beside a running server that has loaded the same bank this removes nothing it grades with; a server still grading
an older version (edited on disk, not reloaded) computes what it misses again on first use.
"""

from __future__ import annotations

import collections
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from graders.compile_profile import ProfileCache, profile_key
from graders.problem import ProblemBank
from graders.reference import cache_key
from graders.settings import GraderSettings
from graders.trusted_cache import JAX_CACHE_SUFFIX, trusted_cache_dir

IN_PROGRESS_S = 3600.0  # younger files may belong to a preparation in progress
STAGING_PREFIX = ".jax-replay-staging-"  # compile_profile.fill_replay_cache's staging directories


@dataclass
class PruneResult:
    files: collections.Counter[str] = field(default_factory=collections.Counter)  # removed, by kind
    bytes: collections.Counter[str] = field(default_factory=collections.Counter)
    replay_kept_all: bool = False  # a current profile could not be read: the replay cache was left alone

    def summary(self) -> str:
        names = {"reference": "files of old versions", "replay": "replay programs", "trusted": "trusted programs",
                 "staging": "files of abandoned fills"}
        parts = [f"{self.files[k]} {name} ({self.bytes[k] / 2**20:.1f} MB)" for k, name in names.items()]
        line = "pruned " + ", ".join(parts)
        if self.replay_kept_all:
            line += "; the replay cache was left alone (a current profile could not be read)"
        return line


def prune_cache(bank: ProblemBank, settings: GraderSettings, *, trusted_days: float = 30.0,
                now: float | None = None) -> PruneResult:
    """Remove what no current version of `bank`'s problems uses from `settings.cache_dir` (module docstring)."""
    now = time.time() if now is None else now
    cache = settings.cache_dir
    result = PruneResult()

    def old(path: Path, age_s: float = IN_PROGRESS_S) -> bool:
        try:
            return now - path.stat().st_mtime > age_s
        except FileNotFoundError:
            return False

    def remove(kind: str, path: Path) -> None:
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return
        result.files[kind] += 1
        result.bytes[kind] += size

    profiles = ProfileCache(cache)  # where the profiles, the outputs beside them and the replay programs are
    current: dict[str, set[str]] = {}  # problem id -> the names (before the first dot) of its current files
    replay_keys: set[str] = set()
    for loaded in bank:
        key = cache_key(loaded)
        current[loaded.id] = {key, profile_key(key)}
        try:
            replay_keys.update(json.loads(profiles.path(loaded).read_text())["replay_keys"])
        except FileNotFoundError:
            pass  # not prepared: none of its programs to keep
        except (OSError, ValueError, KeyError, TypeError):
            result.replay_kept_all = True
    unloadable = {path.stem for path in bank.errors}

    reference = profiles.directory
    for directory in sorted(reference.iterdir()) if reference.is_dir() else []:
        if not directory.is_dir() or directory.name in unloadable:
            continue
        keep = current.get(directory.name, set())
        for item in directory.iterdir():
            if item.is_file() and not item.name.endswith(".lock") and item.name.split(".", 1)[0] not in keep \
                    and old(item):
                remove("reference", item)

    replay = profiles.jax_cache_dir
    if replay.is_dir() and not result.replay_kept_all:
        for item in replay.iterdir():
            if item.name.endswith(JAX_CACHE_SUFFIX) and item.is_file() \
                    and item.name[:-len(JAX_CACHE_SUFFIX)] not in replay_keys and old(item):
                remove("replay", item)

    trusted = trusted_cache_dir(cache)
    for item in trusted.iterdir() if trusted.is_dir() else []:
        if not item.is_file():
            continue
        if item.name.endswith(JAX_CACHE_SUFFIX):
            if old(item, trusted_days * 86400):
                remove("trusted", item)
        elif item.name.startswith(".put-") and old(item):  # a write that never finished
            remove("trusted", item)

    for staging in cache.glob(f"{STAGING_PREFIX}*") if cache.is_dir() else []:
        if staging.is_dir() and old(staging):
            for item in staging.rglob("*"):
                if item.is_file():
                    remove("staging", item)
            shutil.rmtree(staging, ignore_errors=True)
    return result
