"""The Celery app on Redis for scale-out grading, and a probe of the broker for health checks.

The server's side of the queue is app/grading/queue_dispatcher.py, the workers' is app/grading/worker.py.
"""

from __future__ import annotations

import logging

from celery import Celery

from app.core.config import Settings

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
