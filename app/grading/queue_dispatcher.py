"""The server's dispatcher for scale-out grading: attempt ids go to Redis, `gradax worker`s grade them.

With `GRADAX_GRADING_BACKEND=celery` the server grades nothing itself: after an attempt is committed as
queued, `QueueDispatcher.submit` sends its id to Redis, and `gradax worker` processes (app/grading/worker.py)
take an attempt through `claims.claim_next` and grade it. A message only says "an attempt is waiting, maybe
this one"; the attempt rows decide what happens (claims.py), so a lost, late or doubled message is harmless:
the sweeper here sends again what has waited too long and re-queues attempts whose worker died, and a
worker that finishes an author's attempt sends a message for that author's next one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.grading import claims
from app.grading.celery_app import QUEUE, TASK_NAME, make_celery
from app.models import Attempt, AttemptStatus

log = logging.getLogger("gradax.queue")


class QueueDispatcher:
    """The `Dispatcher` backed by Celery workers."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings, *, celery: Celery | None = None,
                 sweep: bool = True):
        self.session_factory = session_factory
        self.settings = settings
        self.celery = celery or make_celery(settings)
        self.sweep_enabled = sweep
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._redis: Any = None

    def start(self) -> None:
        if self.sweep_enabled:
            self._thread = threading.Thread(target=self._sweep_loop, name="gradax-queue-sweeper", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> int:
        """Stop sweeping. Gradings belong to the workers, which release their own claims; returns 0."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        return 0

    def publish_done(self, attempt_id: int) -> None:
        """Tell the servers' long polls that this attempt's result is committed (completions.RedisRelay)."""
        from app.grading.completions import publish_done

        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        publish_done(self._redis, attempt_id)

    def submit(self, attempt_id: int, *, countdown: float | None = None) -> bool:
        """Send the attempt's id to the workers. False when the broker is unreachable (the sweeper resends)."""
        options: dict[str, Any] = {"queue": QUEUE}
        if countdown:
            options["countdown"] = countdown
        try:
            self.celery.send_task(TASK_NAME, args=[attempt_id], **options)
        except Exception as exc:
            log.warning("could not queue attempt %d (%s: %s); the sweeper will send it again", attempt_id,
                        type(exc).__name__, exc)
            return False
        return True

    def hand_off(self, user_id: int, fair: claims.FairShare) -> None:
        """After an author's attempt ends: send a message for their next queued attempt, if any, due when their
        budget allows (its own message was likely dropped while the author had one running)."""
        with self.session_factory() as session:
            next_id = session.scalar(select(Attempt.id).where(
                Attempt.user_id == user_id, Attempt.status == AttemptStatus.QUEUED.value).order_by(Attempt.id))
        if next_id is not None:
            wait = claims.budget_wait_s(self.session_factory, user_id, fair)
            self.submit(next_id, countdown=wait + 0.05 if wait > 0 else None)

    def sweep(self) -> claims.SweepResult:
        result = claims.sweep(self.session_factory, requeue_after_s=self.settings.requeue_after_s,
                              max_tries=self.settings.grading_retries + 2)
        for attempt_id in result.resend:
            self.submit(attempt_id)
        if result.resend:
            log.info("sent %d queued attempts again: %s", len(result.resend), result.resend)
        return result

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s):
            try:
                self.sweep()
            except Exception:
                log.exception("queue sweep failed")
