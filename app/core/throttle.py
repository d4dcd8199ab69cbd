"""Log in and registration under a flood: rate limits per client and per username, and a bound on the password
hashes computed at once.

An argon2id hash costs 64 MiB and ~50 ms of a core by design; forty at once took the server from 140 MB to
944 MB. So a request first passes two moving-window limits (`limits`, in memory: per server process), then
waits for one of `hash_slots` hashing slots without holding a thread (an asyncio semaphore), and gives up with
503 after `hash_wait_s`. Everything else the server does keeps its threads and memory.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from app.errors import AppError

T = TypeVar("T")


class AuthGuard:
    def __init__(self, *, per_client: int, per_username: int, hash_slots: int, hash_wait_s: float):
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_client: RateLimitItem | None = RateLimitItemPerMinute(per_client) if per_client > 0 else None
        self._per_username: RateLimitItem | None = RateLimitItemPerMinute(per_username) if per_username > 0 else None
        self.hash_slots = max(1, hash_slots)
        self.hash_wait_s = hash_wait_s
        # One semaphore per event loop (a test may run the app on several loops, one after the other).
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
            weakref.WeakKeyDictionary()

    def check(self, *, client: str, username: str) -> None:
        """Count one log in or registration try; 429 with Retry-After once a limit is reached."""
        for item, kind, key in ((self._per_client, "client", client),
                                (self._per_username, "username", username.strip().lower()[:64])):
            if item is None:
                continue
            if not self._limiter.hit(item, "auth", kind, key):
                reset = self._limiter.get_window_stats(item, "auth", kind, key).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                who = "from this address" if kind == "client" else "for this username"
                raise AppError(429, f"too many log in or registration attempts {who}: at most {item.amount} a "
                                    f"minute; retry in {wait} s", headers={"Retry-After": str(wait)})

    async def hashing(self, work: Callable[[], T]) -> T:
        """Run `work` (which hashes or verifies a password) in a thread once a hashing slot is free."""
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.hash_slots)
        try:
            await asyncio.wait_for(slots.acquire(), self.hash_wait_s)
        except TimeoutError:
            raise AppError(503, "the server is busy logging people in; retry in a few seconds",
                           headers={"Retry-After": "5"}) from None
        try:
            return await run_in_threadpool(work)
        finally:
            slots.release()
