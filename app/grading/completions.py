"""Long polling: wake a waiting `GET /submissions/{id}?wait=S` the moment its attempt is stored.

The embedded dispatcher grades in this process and calls `notify` right after the result is committed, so a
waiting request answers within milliseconds instead of at the browser's next poll. A result written by
another process (a `gradax worker`) is found by the waiting request's own re-read of the row every
`RECHECK_S`: the database stays the only source of truth, a notification only says "read it now".
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict

RECHECK_S = 0.25


class Completions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = defaultdict(set)

    def notify(self, attempt_id: int) -> None:
        """Called from any thread once the attempt's result is committed."""
        with self._lock:
            waiters = self._waiters.pop(attempt_id, set())
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that request's loop is gone (server shutting down)
                pass

    def register(self, attempt_id: int) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        """Before reading the row: a result committed after the read still wakes the waiter."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[attempt_id].add(waiter)
        return waiter

    def unregister(self, attempt_id: int, waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        with self._lock:
            waiters = self._waiters.get(attempt_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[attempt_id]

    def waiting(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())
