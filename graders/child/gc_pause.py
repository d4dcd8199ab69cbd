"""Pausing the cyclic garbage collector around big imports: used in the sandbox (the harness) and by the server."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (for big imports), then as before.

    Importing a large library builds objects that live as long as the process (~130,000 for jax, flax and optax),
    and the collections that many allocations set off walk them again and again for nothing: importing those three
    took 0.77 CPU-s with the collector and 0.65 without, the app's server 1.14 and 0.91 (docs/performance.md)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
