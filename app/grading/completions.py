"""Long polling: wake a waiting `GET /submissions/{id}?wait=S` the moment its attempt is stored.

The embedded dispatcher grades in this process and calls `notify` right after the result is committed. A
`gradax worker` publishes the attempt id on the Redis channel `DONE_CHANNEL` after its commit, and the
server's `RedisRelay` turns each message into a `notify`. Either way a waiting request answers within
milliseconds. The database stays the only source of truth: a notification only says "read it now", and
the attempt's status is also re-read every `long_poll_recheck_s` (0.25 s), once for all its waiters, so a
lost message (Redis restarting, the relay reconnecting) costs at most that much latency, never a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.errors import AppError

log = logging.getLogger("gradax.completions")
DONE_CHANNEL = "gradax:attempt-done"


class Completions:
    """Long-poll waiters by attempt. Waiters on one attempt share one watch: one event that `notify` sets, and
    one re-read of the attempt's status every `recheck_s` seconds for them all (300 long polls on one attempt cost what
    one does). Each user may have at most `per_user` long polls waiting at once."""

    def __init__(self, *, per_user: int = 0) -> None:
        self.per_user = per_user
        self._lock = threading.Lock()
        self._watches: dict[tuple[asyncio.AbstractEventLoop, int], _Watch] = {}
        self._by_user: dict[int, int] = defaultdict(int)

    def notify(self, attempt_id: int) -> None:
        """Called from any thread once the attempt's result is committed."""
        with self._lock:
            watches = [w for (_, a), w in self._watches.items() if a == attempt_id]
        for watch in watches:
            watch.wake()

    @contextlib.asynccontextmanager
    async def watch(self, attempt_id: int, *, user_id: int, is_done: Callable[[], Awaitable[bool]],
                    recheck_s: float = 0.25) -> AsyncIterator[_Watch]:
        """Register a waiter before reading the row (a result committed after the read still wakes it); 429
        past the user's cap. `is_done` re-reads the attempt's status, shared by the watch's waiters."""
        loop = asyncio.get_running_loop()
        key = (loop, attempt_id)
        with self._lock:
            if self.per_user > 0 and self._by_user[user_id] >= self.per_user:
                raise AppError(429, f"too many waiting requests: at most {self.per_user} long polls per user at "
                                    "once; wait for one to return", headers={"Retry-After": "1"})
            self._by_user[user_id] += 1
            watch = self._watches.get(key)
            if watch is None:
                watch = self._watches[key] = _Watch(loop, asyncio.Event())
            watch.waiters += 1
        try:
            if watch.task is None:
                watch.task = loop.create_task(self._recheck(watch, is_done, recheck_s))
            yield watch
        finally:
            with self._lock:
                self._by_user[user_id] -= 1
                if self._by_user[user_id] <= 0:
                    del self._by_user[user_id]
                watch.waiters -= 1
                last = watch.waiters == 0
                if last:
                    self._watches.pop(key, None)
            if last and watch.task is not None:
                watch.task.cancel()

    async def _recheck(self, watch: _Watch, is_done: Callable[[], Awaitable[bool]], recheck_s: float) -> None:
        while not watch.event.is_set():
            await asyncio.sleep(recheck_s)
            try:
                if await is_done():
                    watch.event.set()
            except Exception:  # a failed read is retried at the next recheck; the waiters time out anyway
                log.exception("long poll: re-reading an attempt failed")

    def waiting(self) -> int:
        with self._lock:
            return sum(w.waiters for w in self._watches.values())


@dataclass
class _Watch:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event
    waiters: int = 0
    task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # that request's loop is gone (server shutting down)
            pass

    async def wait(self, timeout: float) -> None:
        """Until the attempt is done or `timeout` seconds passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout)


def publish_done(client: Any, attempt_id: int) -> None:
    """From a worker, after the commit: best effort (the waiting request re-reads the row anyway)."""
    try:
        client.publish(DONE_CHANNEL, str(attempt_id))
    except Exception as exc:
        log.warning("could not announce attempt %d on Redis (%s: %s); waiting clients re-read it shortly",
                    attempt_id, type(exc).__name__, exc)


class RedisRelay:
    """In the server (celery mode): Redis `DONE_CHANNEL` messages -> `Completions.notify`, reconnecting."""

    def __init__(self, completions: Completions, redis_url: str):
        self.completions = completions
        self.redis_url = redis_url
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.relayed = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gradax-done-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        import redis

        backoff = 0.5
        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2, socket_timeout=5,
                                              health_check_interval=30)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(DONE_CHANNEL)
                backoff = 0.5
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        try:
                            attempt_id = int(message["data"])
                        except (TypeError, ValueError):
                            continue
                        self.completions.notify(attempt_id)
                        self.relayed += 1
                pubsub.close()
                client.close()
            except Exception as exc:
                log.warning("result notifications from Redis interrupted (%s: %s); reconnecting",
                            type(exc).__name__, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
