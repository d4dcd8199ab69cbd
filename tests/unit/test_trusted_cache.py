"""The trusted processes' compilation cache: one directory written, others only read (graders/trusted_cache.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.trusted_cache import ReadThroughCache, cache_env, use_cache_from_env


def test_a_program_found_in_a_read_only_directory_is_copied_and_counted_as_reused(tmp_path: Path) -> None:
    write, shared = tmp_path / "staging", tmp_path / "replay"
    shared.mkdir()
    (shared / "jit_add-abc-cache").write_bytes(b"program")
    cache = ReadThroughCache(write, [shared])
    assert cache.get("jit_add-abc") == b"program"
    assert (write / "jit_add-abc-cache").read_bytes() == b"program"  # so the staging dir lists it among its keys
    assert cache.get("jit_mul-def") is None
    assert (cache.reused, cache.compiled) == (1, 0)
    assert sorted(p.name for p in shared.iterdir()) == ["jit_add-abc-cache"]  # never written


def test_put_stores_what_jax_compiled_once_and_leaves_no_partial_file(tmp_path: Path) -> None:
    cache = ReadThroughCache(tmp_path / "trusted")
    cache.put("jit_mul-def", b"compiled")
    cache.put("jit_mul-def", b"something else")  # as jax.lru_cache: the first value stays
    assert cache.get("jit_mul-def") == b"compiled"
    assert cache.compiled == 1
    assert sorted(p.name for p in (tmp_path / "trusted").iterdir()) == ["jit_mul-def-cache"]
    assert (tmp_path / "trusted" / "jit_mul-def-cache").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("key", ["", "../escape", ".hidden", "a/b"])
def test_a_key_that_is_not_a_file_name_is_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        ReadThroughCache(tmp_path / "trusted").get(key)


def test_the_environment_names_the_directories_and_is_taken_out_of_the_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env = cache_env(tmp_path / "w", [tmp_path / "r1", tmp_path / "r2"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    installed: list[tuple[Path, list[Path]]] = []
    monkeypatch.setattr("graders.trusted_cache.use_cache",
                        lambda write, reads: installed.append((write, list(reads))))  # no jax in a unit test
    use_cache_from_env()
    assert installed == [(tmp_path / "w", [tmp_path / "r1", tmp_path / "r2"])]
    assert not set(env) & set(os.environ)  # the reference's code does not see where the caches are


def test_a_program_read_from_the_written_directory_is_marked_as_used(tmp_path: Path) -> None:
    """`gradax prepare --prune` keeps the trusted programs used lately: a hit touches the file (graders/prune.py)."""
    import os
    import time

    cache = ReadThroughCache(tmp_path / "trusted")
    cache.put("jit_mul-def", b"compiled")
    path = tmp_path / "trusted" / "jit_mul-def-cache"
    month_ago = time.time() - 30 * 86400
    os.utime(path, (month_ago, month_ago))
    assert cache.get("jit_mul-def") == b"compiled"
    assert time.time() - path.stat().st_mtime < 60
