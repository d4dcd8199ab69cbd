"""The zygote's stock of MLIR contexts follows the replays it forks children for (graders/child/zygote.py)."""

from __future__ import annotations

from graders.child.zygote import CONTEXT_MARGIN, MAX_CONTEXTS, contexts_for


def test_a_replay_asks_for_one_context_per_program_it_lowers() -> None:
    plain = {"k": "jit", "m": "jax._src.numpy.ufuncs", "n": "add", "a": [], "kw": {}}
    gradient = {**plain, "vjp": [0]}
    cotangents = {"k": "cot", "a": [{"a": [2, 3], "d": "float32"}]}
    assert contexts_for([]) == CONTEXT_MARGIN
    assert contexts_for([plain] * 10) == 10 + CONTEXT_MARGIN
    # A gradient entry lowers its forward and its backward program; a cotangent sum its product and its sum.
    assert contexts_for([plain, gradient, cotangents]) == 1 + 2 + 2 + CONTEXT_MARGIN
    assert contexts_for([plain] * 1000) == MAX_CONTEXTS  # a zygote never grows past ~290 MB of contexts
    assert contexts_for(["not an entry", 3]) == CONTEXT_MARGIN  # anything else in a profile counts nothing
