"""Persistent compilation caches of the trusted processes: where they write, and what else they may read.

Two directories under `<data>/cache/`:
- `jax-replay` (compile_profile.replay_cache_dir): what warm children read. Only `fill_replay_cache` publishes
  into it: library functions and primitives replayed on zeros, never anything compiled from a reference.
- `jax-trusted` (`trusted_cache_dir`): what the trusted reference runs (outputs of the reference and known
  mistakes, the profile's recording) compile. Never bound into a sandbox.

Without a cache, every trusted run compiled everything again: the whole bank's 24 fills compiled 1,418 programs,
940 of them distinct (one in three had been compiled by an earlier fill of the same data dir), and a problem
prepared again after an edit to its text or limits compiled all its reference's programs again. So each trusted
process writes into its own directory and also reads from directories it may trust:
- a fill writes into its private staging directory and reads the replay cache (what earlier fills compiled from
  other profiles) and `jax-trusted`;
- a reference run writes into `jax-trusted` and reads it and the replay cache.
Only trusted processes read `jax-trusted`; no sandbox binds it.

Why a fill may take a program from `jax-trusted`: every grading process computes a program's key over its whole
module, metadata included, and the metadata holds no file name or line, only the names jax gives ops
(graders/child/profile_replay.py `configure_persistent_cache`). The fill looks up only keys of modules it lowered
itself, from library functions and primitives on zeros, so a program it finds under such a key is a compilation
of the very module it would compile: byte for byte the same input, with the same flags and versions (in the key
too). A program traced from the reference's own functions has their names in its module (`jit(train_step)/...`),
hence another key, and is never looked up (tests/test_compile_profile.py). Before keys covered metadata, a program
found this way could have carried the reference's file names and lines. Measured: the 24 fills of a whole-bank
preparation compiled a tenth as many programs (docs/performance.md, "Fills reuse the reference runs' programs").

A hit from a read-only directory is copied into the writable one: a fill's staging directory must hold every
program its replay needs (its keys are the profile's `replay_keys`). Writes go to a temporary file and a rename,
because two trusted runs of a `gradax prepare` share `jax-trusted`, and JAX's own file cache writes in place: a
reader could load half a program.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

WRITE_ENV = "GRADAX_JAX_CACHE_DIR"
READ_ENV = "GRADAX_JAX_READ_CACHES"  # os.pathsep-separated
JAX_CACHE_SUFFIX = "-cache"  # jax._src.lru_cache stores key K as the file `K-cache`


def trusted_cache_dir(cache_dir: Path) -> Path:
    """The persistent compilation cache of the reference runs (`<data>/cache/jax-trusted`); no child reads it."""
    return cache_dir / "jax-trusted"


def cache_env(write_dir: Path, read_dirs: Sequence[Path] = ()) -> dict[str, str]:
    """The environment that makes a trusted subprocess call `use_cache_from_env` with these directories."""
    return {WRITE_ENV: str(write_dir), READ_ENV: os.pathsep.join(str(d) for d in read_dirs)}


class ReadThroughCache:
    """JAX's persistent-cache interface (`get`/`put`, as jax._src.lru_cache.LRUCache) over one writable directory
    and read-only ones."""

    def __init__(self, write_dir: Path, read_dirs: Sequence[Path] = ()):
        self._path = self.path = write_dir
        self.read_dirs = [d for d in read_dirs if d != write_dir]
        self.compiled = 0  # programs JAX compiled and stored (misses everywhere)
        self.reused = 0  # programs found in a read-only directory and copied
        write_dir.mkdir(parents=True, exist_ok=True)

    def _file(self, directory: Path, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"not a cache key: {key!r}")
        return directory / f"{key}{JAX_CACHE_SUFFIX}"

    def get(self, key: str) -> bytes | None:
        own = self._file(self.path, key)
        try:
            value = own.read_bytes()
        except FileNotFoundError:
            pass
        else:
            try:
                os.utime(own)  # in use: `gradax prepare --prune` keeps what was used lately (graders/prune.py)
            except OSError:
                pass
            return value
        for directory in self.read_dirs:
            try:
                value = self._file(directory, key).read_bytes()
            except OSError:
                continue
            self._store(key, value)
            self.reused += 1
            return value
        return None

    def put(self, key: str, value: bytes) -> None:
        """Called by JAX with what it compiled after `get` missed."""
        if self._store(key, value):
            self.compiled += 1

    def _store(self, key: str, value: bytes) -> bool:
        target = self._file(self.path, key)
        if target.exists():
            return False
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True


def use_cache(write_dir: Path, read_dirs: Sequence[Path] = ()) -> ReadThroughCache:
    """Make this (trusted) process compile through a `ReadThroughCache`; before its first compilation."""
    from graders.child.profile_replay import configure_persistent_cache, install_persistent_cache

    configure_persistent_cache(str(write_dir))
    cache = ReadThroughCache(write_dir, read_dirs)
    install_persistent_cache(cache)
    return cache


def use_cache_from_env() -> ReadThroughCache | None:
    """`use_cache` with the directories of `cache_env`, when set (each trusted subcommand calls this first)."""
    write = os.environ.pop(WRITE_ENV, "")
    reads = [Path(p) for p in os.environ.pop(READ_ENV, "").split(os.pathsep) if p]
    return use_cache(Path(write), reads) if write else None
