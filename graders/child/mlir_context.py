"""One MLIR context for the lowerings of a grading process, instead of a new one for each.

jax lowers every program it compiles (each jit, each eager primitive, in the sandbox and in trusted runs) into a
module of a new MLIR context: ~2 ms of dialect registration to make it and as much again in first-use costs, per
program. The bank's tests use tiny shapes, so this is a large share of a compile: a warm child replaying
nnx-multihead-attention's profile (125 programs, all served by the persistent cache) spends 1.0 CPU-s with a new
context per program and 0.48 s with one shared (docs/performance.md "One MLIR context per process").

A context only ever grows (it keeps every type and attribute it uniqued; that bloat is the one reason not to
reuse it, per MLIR's own discussion of it), so a process changes to a new one every `LOWERINGS_PER_CONTEXT`
lowerings: a trusted worker or a submission that compiles without end holds a bounded amount. Sharing changes
nothing in what is compiled: the persistent cache's keys (the modules' bytecode) are the same either way.
"""

from __future__ import annotations

from typing import Any

LOWERINGS_PER_CONTEXT = 256
_current: list[Any] = []  # [the context handed out, how many lowerings it served]


def share_contexts(make_now: bool = False) -> None:
    """From now on, jax's `make_ir_context` hands out one context for up to `LOWERINGS_PER_CONTEXT` lowerings.

    `make_now`: make the first one at once, if none is: in a process that forks (the zygote, the trusted worker),
    every child then inherits it, copy-on-write, and makes none of its own. Making a context starts no thread and
    no backend. Calling this again only does what `make_now` asks.
    """
    from jax._src.interpreters import mlir

    if not getattr(mlir.make_ir_context, "gradax_shared", False):
        make = mlir.make_ir_context

        def make_ir_context() -> Any:
            if not _current or _current[1] >= LOWERINGS_PER_CONTEXT:
                _current[:] = [make(), 0]
            _current[1] += 1
            return _current[0]

        make_ir_context.gradax_shared = True  # type: ignore[attr-defined]
        mlir.make_ir_context = make_ir_context
    if make_now and not _current:
        mlir.make_ir_context()
        _current[1] = 0  # made, not yet used
