"""Long polling: wake a waiting `GET /submissions/{id}?wait=S` the moment its attempt is stored.

The embedded dispatcher grades in this process and calls `notify` right after the result is committed. A
`gradax worker` publishes the attempt id on the Redis channel `DONE_CHANNEL` after its commit, and the
server's `RedisRelay` turns each message into a `notify`. Either way a waiting request answers within
milliseconds. The database stays the only source of truth: a notification only says "read it now", and
a waiting request also re-reads the row every `long_poll_recheck_s` (0.25 s), so a lost message (Redis
restarting, the relay reconnecting) costs at most that much latency, never a result.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from typing import Any

log = logging.getLogger("gradax.completions")
DONE_CHANNEL = "gradax:attempt-done"


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
