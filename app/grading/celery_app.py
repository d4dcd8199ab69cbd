"""The queue side of scale-out grading: the Celery app on Redis, and the server's dispatcher for it.

With `GRADAX_GRADING_BACKEND=celery` the server grades nothing itself: after an attempt is committed as
queued, `QueueDispatcher.submit` sends its id to Redis, and `gradax worker` processes (app/grading/worker.py)
claim and grade it. A message carries only the id; the attempt row decides what happens (claims.py), so a
lost, late or doubled message is harmless: the sweeper here sends again what has waited too long and
re-queues attempts whose worker died.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.grading import claims

log = logging.getLogger("gradax.queue")

TASK_NAME = "gradax.grade_attempt"
QUEUE = "gradax-grading"


def make_celery(settings: Settings) -> Celery:
    celery = Celery("gradax", broker=settings.redis_url, set_as_current=False)
    celery.conf.update(
        task_default_queue=QUEUE,
        # Acknowledge only after grading: a worker that dies mid-task leaves the message to be redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message per free slot: a busy worker does not hoard messages another could grade.
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        # A request must not hang on a broker outage: the attempt is committed, the sweeper sends it later.
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                                   "interval_max": 0.5},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_connection_max_retries=None,
    )
    return celery


class BrokerProbe:
    """Reachability and queue depth of the Redis broker, for /readyz and /metrics."""

    def __init__(self, redis_url: str):
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def ping(self) -> str | None:
        """None when reachable, else why not."""
        try:
            self._redis.ping()
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        return None

    def queue_length(self) -> int | None:
        try:
            return int(self._redis.llen(QUEUE))
        except Exception:
            return None


class QueueDispatcher:
    """Same surface as the in-process `Dispatcher` (start/stop/submit), backed by Celery workers."""

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

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

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
