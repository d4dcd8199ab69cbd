"""`collection_paused`: no cyclic collection inside, the collector's state as it was after, even on an error."""

from __future__ import annotations

import gc

import pytest

from graders.child.gc_pause import collection_paused


def test_the_collector_is_off_inside_and_on_again_after_even_when_the_block_raises() -> None:
    assert gc.isenabled()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ImportError), collection_paused():
        raise ImportError("a failed import")
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_caller_stays_off() -> None:
    gc.disable()
    try:
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
