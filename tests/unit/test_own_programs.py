"""What a sandboxed process compiles itself stays in its memory, in front of the read-only replay cache
(graders/child/profile_replay.py `OwnPrograms`; tests/test_compile_share.py grades through it)."""

from __future__ import annotations

from graders.child.profile_replay import OwnPrograms


class ReadOnly:
    """The replay cache as a sandbox sees it: what it holds can be read; a write is a failure of the test."""

    def __init__(self, held: dict[str, bytes]):
        self.held = held
        self.reads: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.reads.append(key)
        return self.held.get(key)

    def put(self, key: str, value: bytes) -> None:
        raise AssertionError(f"wrote {key} into the read-only cache")


def test_own_programs_are_found_again_and_never_written_below() -> None:
    base = ReadOnly({"library": b"replayed"})
    layer = OwnPrograms(base, limit=1000)
    assert layer.get("library") == b"replayed"  # the replay cache, read through
    assert layer.get("own") is None
    layer.put("own", b"compiled here")
    assert layer.get("own") == b"compiled here"
    assert base.reads == ["library", "own"]  # a kept program is found without a look below
    assert base.held == {"library": b"replayed"}


def test_nothing_more_is_kept_past_the_limit_and_a_kept_program_is_not_replaced() -> None:
    layer = OwnPrograms(ReadOnly({}), limit=10)
    layer.put("a", b"123456")
    layer.put("b", b"12345")  # 11 bytes in all: over the limit, not kept
    layer.put("a", b"other")
    assert layer.get("a") == b"123456" and layer.get("b") is None
    assert layer.kept_bytes == 6
    layer.put("c", b"1234")  # exactly at the limit
    assert layer.get("c") == b"1234" and layer.kept_bytes == 10


def test_without_a_replay_cache_it_keeps_its_own_all_the_same() -> None:
    layer = OwnPrograms(None, limit=100)
    assert layer.get("k") is None
    layer.put("k", b"v")
    assert layer.get("k") == b"v"
