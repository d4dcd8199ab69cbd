"""Logs, metrics and schema state: what an operator watches when gradax runs on many machines.

Metrics live in prometheus_client's default registry: the server exposes them at GET /metrics, a worker on
`gradax worker --metrics-port`. Grading latency and verdicts are counted where the report is stored (the
server in-process, the worker when scaled out); queue depth and pool health are read when scraped.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.migrate import alembic_config
from graders.executor import Executor

GRADING_SECONDS = Histogram(
    "gradax_grading_seconds", "From submission to stored report (queue wait included), seconds",
    ["mode"], buckets=(0.05, 0.1, 0.15, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
VERDICTS = Counter("gradax_verdicts", "Graded attempts by verdict", ["verdict", "mode"])


def observe_report(*, mode: str, verdict: str, created_at: datetime | None, finished_at: datetime | None) -> None:
    """Count one stored report (called from services.attempts.record_report, whichever process grades)."""
    VERDICTS.labels(verdict=verdict, mode=mode).inc()
    if created_at is not None and finished_at is not None:
        GRADING_SECONDS.labels(mode=mode).observe(max(0.0, (finished_at - created_at).total_seconds()))


class _StateCollector(Collector):
    """Gauges computed at scrape time from the database, the broker and the grading executor."""

    def __init__(self) -> None:
        self.session_factory: sessionmaker[Session] | None = None
        self.broker_length: Callable[[], int | None] | None = None
        self.executor: Executor | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.session_factory is not None:
            from app.models import ACTIVE_STATUSES, Attempt

            depth = GaugeMetricFamily("gradax_queue_depth", "Attempts waiting or being graded (database)",
                                      labels=["status"])
            counts = dict.fromkeys(ACTIVE_STATUSES, 0)
            try:
                with self.session_factory() as session:
                    rows = session.execute(select(Attempt.status, func.count()).where(
                        Attempt.status.in_(ACTIVE_STATUSES)).group_by(Attempt.status)).all()
                counts.update({status: int(n) for status, n in rows})
            except Exception:
                logging.getLogger("gradax.metrics").exception("queue depth query failed")
            for status, n in counts.items():
                depth.add_metric([status], n)
            yield depth
        if self.broker_length is not None:
            length = self.broker_length()
            if length is not None:
                yield GaugeMetricFamily("gradax_broker_queue_length", "Messages waiting in the Redis queue",
                                        value=length)
        if self.executor is not None:
            yield from _pool_gauges(self.executor)


def _pool_gauges(executor: Executor) -> Iterator[GaugeMetricFamily]:
    try:
        health = executor.health()
    except Exception:  # a scrape never fails for the executor's sake
        logging.getLogger("gradax.metrics").exception("the executor's health failed")
        return
    # A cold executor is always able to start a fresh sandbox, keeps no processes and counts no runs.
    yield GaugeMetricFamily("gradax_pool_healthy", "1 when the grading pool can serve warm (cold: always 1)",
                            value=1.0 if health.healthy else 0.0)
    info = GaugeMetricFamily("gradax_pool_info", "The grading executor in use", labels=["kind"])
    info.add_metric([health.kind], 1.0)
    yield info
    if health.memory_bytes is not None:
        yield GaugeMetricFamily("gradax_pool_memory_bytes", "Memory charged to the pool", value=health.memory_bytes)
    if health.runs is not None:
        runs = GaugeMetricFamily("gradax_pool_runs", "Submissions run by the pool, warm or cold fallback",
                                 labels=["path"])
        for path, n in health.runs.items():
            runs.add_metric([str(path)], float(n))
        yield runs


_STATE = _StateCollector()
REGISTRY.register(_STATE)


def register_state_metrics(*, session_factory: sessionmaker[Session] | None = None,
                           broker_length: Callable[[], int | None] | None = None) -> None:
    """Point the scrape-time gauges at this process's database and broker (the latest app wins)."""
    _STATE.session_factory = session_factory
    _STATE.broker_length = broker_length


def register_pool_metrics(executor: Executor) -> None:
    _STATE.executor = executor


def schema_state(engine: Engine) -> tuple[str | None, str | None]:
    """(revision the database is at, newest revision in the code)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


# -- logs ------------------------------------------------------------------------------------------

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, any `extra=` fields, and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, celery's) through one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def uvicorn_log_config(log_format: str, level: str) -> dict[str, Any]:
    """A uvicorn `log_config` sending its loggers through the same format as ours."""
    formatter: dict[str, Any] = ({"()": "app.observability.JsonFormatter"} if log_format == "json"
                                 else {"format": TEXT_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gradax": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "gradax", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
