"""A background job's heartbeat: its row is touched every few seconds while it runs, so a reader anywhere can tell
a running job from one whose runner stopped (regrades, upload checks)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("gradax.jobs")


@contextmanager
def beating(touch: Callable[[], None], interval_s: float, name: str) -> Iterator[None]:
    """Call `touch` every `interval_s` seconds in a thread of its own until the block ends. A failed touch is
    logged and tried again at the next beat (a database briefly locked must not end the job)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval_s):
            try:
                touch()
            except Exception:
                log.exception("%s: heartbeat failed", name)

    thread = threading.Thread(target=beat, name=f"{name}-beat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
